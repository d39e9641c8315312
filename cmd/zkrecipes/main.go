// Command zkrecipes runs commands under ZooKeeper locks and leader elections,
// with fencing tokens, and shows who holds or waits for a lock.
//
//	zkrecipes lock /jobs/nightly -- ./nightly.sh       # like flock(1)
//	zkrecipes elect /services/scheduler -- ./scheduler # run while leader
//	zkrecipes ls /jobs/nightly                         # holder and waiters
//	zkrecipes demo --short                             # the fencing demo
//
// Run "zkrecipes help" for commands, flags and exit codes.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Exit codes. A command run by lock or elect passes its own status through
// (128+N if it was killed by signal N), which may collide with 1 to 6: the
// message on stderr tells them apart.
const (
	exitOK       = 0
	exitError    = 1   // connection, ZooKeeper or internal error
	exitUsage    = 2   // bad command line
	exitHeld     = 3   // lock/elect --try: held by someone else
	exitTimeout  = 4   // --timeout passed before the lock or leadership was won
	exitLost     = 5   // the lock or leadership was lost while CMD ran
	exitRevoked  = 6   // lock --revocable: a revoker asked us to release
	exitMaxHold  = 7   // lock --max-hold: CMD outlived the maximum hold time
	exitNoExec   = 126 // CMD found but could not be run
	exitNotFound = 127 // CMD not found

	exitNotRevocable = 3 // revoke: a holder did not opt in; nothing asked of it
	exitNoSuchPath   = 3 // ls --strict: PATH does not exist
)

// exitErr carries an exit code and a message up to main.
type exitErr struct {
	code int
	msg  string
}

func (e *exitErr) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &exitErr{code: code, msg: fmt.Sprintf(format, args...)}
}

// exitCode is returned by commands that exit with a status and have already
// said everything (for example the child's own status).
type exitCode int

func (c exitCode) Error() string { return "exit status " + strconv.Itoa(int(c)) }

type command struct {
	name    string
	summary string
	usage   string // the synopsis lines and the long help, without flags
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands []*command

func init() {
	commands = []*command{lockCommand, electCommand, lsCommand, revokeCommand, demoCommand}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		mainUsage(stderr)
		return exitUsage
	}
	args, code := globalFlags(args, stdout, stderr)
	if code >= 0 {
		return code
	}
	name, rest := args[0], args[1:]
	switch name {
	case "version":
		printVersion(stdout)
		return exitOK
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			mainUsage(stdout)
			return exitOK
		}
		c := findCommand(rest[0])
		if c == nil {
			fmt.Fprintf(stderr, "zkrecipes: unknown command %q\nRun 'zkrecipes help' for usage.\n", rest[0])
			return exitUsage
		}
		return report(c.run([]string{"-h"}, stdout, stderr), c.name, stderr)
	}
	c := findCommand(name)
	if c == nil {
		fmt.Fprintf(stderr, "zkrecipes: unknown command %q\nRun 'zkrecipes help' for usage.\n", name)
		return exitUsage
	}
	return report(c.run(rest, stdout, stderr), c.name, stderr)
}

// globalFlags lets the common flags come before the command ("zkrecipes
// --servers X lock PATH CMD"): they are moved after the command name, where
// the command parses them. It handles --version too. It returns the
// arguments to run, or an exit code >= 0 when it has dealt with them.
func globalFlags(args []string, stdout, stderr io.Writer) ([]string, int) {
	switch args[0] {
	case "-version", "--version":
		printVersion(stdout)
		return nil, exitOK
	case "-h", "-help", "--help":
		return args, -1
	}
	if !strings.HasPrefix(args[0], "-") {
		return args, -1
	}
	fs := flag.NewFlagSet("zkrecipes", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var co commonOpts
	co.register(fs)
	version := fs.Bool("version", false, "print the version")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		mainUsage(stdout)
		return nil, exitOK
	case err != nil:
		fmt.Fprintf(stderr, "zkrecipes: %v\nRun 'zkrecipes help' for usage.\n", err)
		return nil, exitUsage
	case *version:
		printVersion(stdout)
		return nil, exitOK
	}
	rest := fs.Args()
	global := args[:len(args)-len(rest)]
	if n := len(global); n > 0 && global[n-1] == "--" {
		global = global[:n-1]
	}
	if len(rest) == 0 {
		fmt.Fprintf(stderr, "zkrecipes: missing command after %s\nRun 'zkrecipes help' for usage.\n", strings.Join(global, " "))
		return nil, exitUsage
	}
	out := append([]string{rest[0]}, global...)
	return append(out, rest[1:]...), -1
}

// printVersion prints the module version and VCS revision the binary was
// built from, and the Go version.
func printVersion(w io.Writer) {
	version, rev, modified := "(unknown)", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	fmt.Fprintf(w, "zkrecipes %s", version)
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(w, " (revision %s", rev)
		if modified {
			fmt.Fprint(w, ", modified")
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintf(w, " %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func report(err error, name string, stderr io.Writer) int {
	var code exitCode
	var e *exitErr
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &e):
		if e.msg != "" {
			fmt.Fprintf(stderr, "zkrecipes %s: %s\n", name, e.msg)
		}
		if e.code == exitUsage {
			fmt.Fprintf(stderr, "Run 'zkrecipes %s -h' for usage.\n", name)
		}
		return e.code
	default:
		fmt.Fprintf(stderr, "zkrecipes %s: %v\n", name, err)
		return exitError
	}
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func mainUsage(w io.Writer) {
	fmt.Fprint(w, `zkrecipes: ZooKeeper locks with fencing tokens, and leader election.

Usage:
  zkrecipes [common flags] <command> [flags] [arguments]
  zkrecipes version     (or --version)

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `  help     show this help, or "zkrecipes help <command>"
  version  print the version

Common flags (every command but demo; flags may come before the command,
or before or after PATH):
`)
	fs := flag.NewFlagSet("common", flag.ContinueOnError)
	var co commonOpts
	co.register(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, exitCodesHelp)
	fmt.Fprint(w, `
Examples:
  zkrecipes lock /jobs/nightly -- ./nightly.sh
  zkrecipes lock --try /jobs/nightly -- ./nightly.sh || echo "already running"
  ZK_SERVERS=zk1:2181,zk2:2181,zk3:2181 zkrecipes elect /svc/scheduler -- ./scheduler
  zkrecipes elect --listen --json /svc/scheduler
  zkrecipes ls --watch /jobs/nightly
  zkrecipes revoke --break-after 30s --yes /jobs/nightly
  zkrecipes demo --short
`)
}

const exitCodesHelp = `
Exit codes:
  0    success (lock, elect: CMD exited 0)
  1    error: cannot connect (every server refused, or no session within
       --connect-timeout), ZooKeeper error, session lost while waiting
  2    usage error (bad flag, bad --servers, empty ZK_SERVERS, duration
       without a unit, ...)
  3    lock/elect --try: held by someone else; revoke: the holder did not
       opt in to revocation (nothing done); ls --strict: PATH does not exist
  4    --timeout passed before the lock (or leadership) was won
  5    the lock (or, with elect --once, leadership) was lost while CMD ran:
       CMD was signalled (elect without --once campaigns again)
  6    lock --revocable: a revoker asked for the lock: CMD was signalled
  7    lock --max-hold: the maximum hold time ran out while CMD ran: CMD was
       signalled and the lock went to the next waiter
  126  CMD could not be run; 127: CMD not found
  N    otherwise CMD's exit status (128+S if CMD was killed by signal S)

Environment:
  ZK_SERVERS       default for --servers (if set, it must not be empty)
  ZK_DIGEST_FILE   default for --digest-file (a file holding user:password)
  ZK_TLS_CA, ZK_TLS_CERT, ZK_TLS_KEY
                   defaults for --tls-ca, --tls-cert, --tls-key (PEM files)
  ZK_DIGEST        default for --digest (user:password; safer than the flag,
                   which other users can see in ps)
  ZKRECIPES_TOKEN  set for CMD: the fencing token (decimal); pass it to the
                   resources CMD writes to, which must reject smaller tokens
  ZKRECIPES_LOCK_PATH, ZKRECIPES_ELECTION_PATH
                   set for CMD: the lock or election path
  ZKRECIPES_NODE   set for CMD: our contender node's path
`

// commonOpts are the connection and logging flags every command takes.
type commonOpts struct {
	servers        serversFlag
	sessionTimeout time.Duration
	connectTimeout time.Duration
	retryRefused   bool
	digest         string
	digestFile     string
	tlsCA          string
	tlsCert        string
	tlsKey         string
	chroot         string
	metricsAddr    string
	verbose        verbosity
}

// serversFlag is --servers; it remembers whether it was given, and whether
// its default came from a ZK_SERVERS that is set but empty.
type serversFlag struct {
	value    string
	set      bool
	envEmpty bool
}

func (f *serversFlag) String() string { return f.value }
func (f *serversFlag) Set(s string) error {
	f.value, f.set = s, true
	return nil
}

func (co *commonOpts) register(fs *flag.FlagSet) {
	co.servers = serversFlag{value: "127.0.0.1:2181"}
	if env, ok := os.LookupEnv("ZK_SERVERS"); ok {
		co.servers.value = env
		co.servers.envEmpty = strings.TrimSpace(env) == ""
	}
	fs.Var(&co.servers, "servers", "ZooKeeper servers, comma-separated `host:port` (default $ZK_SERVERS, else 127.0.0.1:2181)")
	durationVar(fs, &co.sessionTimeout, "session-timeout", recipes.DefaultSessionTimeout, "ZooKeeper session timeout to ask for, at least 100ms (the server may clamp it)")
	durationVar(fs, &co.connectTimeout, "connect-timeout", 30*time.Second, "give up if no session is granted within this `duration`")
	fs.BoolVar(&co.retryRefused, "retry-refused", false, "keep trying servers that refuse the connection until --connect-timeout (e.g. while ZooKeeper starts); by default zkrecipes gives up (exit 1) as soon as every server has refused")
	fs.StringVar(&co.digest, "digest", os.Getenv("ZK_DIGEST"), "authenticate with digest `user:password` (env ZK_DIGEST; prefer the env or --digest-file: flags show in ps)")
	fs.StringVar(&co.digestFile, "digest-file", os.Getenv("ZK_DIGEST_FILE"), "read digest user:password from this `file` (env ZK_DIGEST_FILE)")
	fs.StringVar(&co.tlsCA, "tls-ca", os.Getenv("ZK_TLS_CA"), "connect with TLS, trusting the CA certificates in this PEM `file` (env ZK_TLS_CA); point --servers at the secure client ports")
	fs.StringVar(&co.tlsCert, "tls-cert", os.Getenv("ZK_TLS_CERT"), "client certificate PEM `file` for mutual TLS and x509 ACLs (env ZK_TLS_CERT); needs --tls-key")
	fs.StringVar(&co.tlsKey, "tls-key", os.Getenv("ZK_TLS_KEY"), "client key PEM `file` (env ZK_TLS_KEY)")
	fs.StringVar(&co.chroot, "chroot", "", "prefix every path with this `path`, e.g. /myapp")
	fs.StringVar(&co.metricsAddr, "metrics-addr", "", "serve the library's metrics in Prometheus format at http://`host:port`/metrics while the command runs (see docs/METRICS.md)")
	fs.Var(&co.verbose, "v", "log library INFO messages to stderr, and show progress while waiting; -v -v (or -v=2) for DEBUG")
}

// durationValue is a duration flag whose error says what is wrong with a
// value such as "5" (no unit).
type durationValue struct{ p *time.Duration }

func durationVar(fs *flag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	if !strings.Contains(usage, "`") {
		usage = "`duration`: " + usage
	}
	fs.Var(durationValue{p}, name, usage)
}

func (d durationValue) String() string {
	if d.p == nil {
		return "0s"
	}
	return d.p.String()
}

func (d durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err == nil {
		*d.p = v
		return nil
	}
	if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
		return fmt.Errorf("missing unit: want a duration such as %ss or %sms", s, s)
	}
	return errors.New(`want a duration such as "5s", "500ms" or "1m30s"`)
}

// verbosity is a counting flag: -v, -v -v, -v=2.
type verbosity int

func (v *verbosity) String() string   { return strconv.Itoa(int(*v)) }
func (v *verbosity) IsBoolFlag() bool { return true }
func (v *verbosity) Set(s string) error {
	switch s {
	case "true":
		*v++
		return nil
	case "false":
		*v = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errors.New("want a count, e.g. -v=2")
	}
	*v = verbosity(n)
	return nil
}

func (co *commonOpts) logger(stderr io.Writer) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case co.verbose >= 2:
		level = slog.LevelDebug
	case co.verbose == 1:
		level = slog.LevelInfo
	}
	h := slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	l := slog.New(h)
	slog.SetDefault(l)
	return l
}

func (co *commonOpts) serverList() ([]string, error) {
	if !co.servers.set && co.servers.envEmpty {
		return nil, fail(exitUsage, "ZK_SERVERS is set but empty: set it to host:port,... (or unset it for 127.0.0.1:2181), or pass --servers")
	}
	var out []string
	for _, s := range strings.Split(co.servers.value, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fail(exitUsage, "no ZooKeeper servers (--servers or ZK_SERVERS)")
	}
	for _, s := range out {
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" {
			return nil, fail(exitUsage, "--servers: %q is not host:port (e.g. zk1:2181, [::1]:2181)", s)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fail(exitUsage, "--servers: %q: the port must be a number from 1 to 65535", s)
		}
	}
	return out, nil
}

// check validates the common flags (usage errors, before connecting).
func (co *commonOpts) check() error {
	if _, err := co.serverList(); err != nil {
		return err
	}
	if co.sessionTimeout < minSessionTimeout {
		return fail(exitUsage, "--session-timeout must be at least %v (got %v)", minSessionTimeout, co.sessionTimeout)
	}
	if co.connectTimeout <= 0 {
		return fail(exitUsage, "--connect-timeout must be positive")
	}
	if co.digestFile != "" {
		if co.digest != "" && os.Getenv("ZK_DIGEST") != co.digest {
			return fail(exitUsage, "give --digest or --digest-file, not both")
		}
		b, err := os.ReadFile(co.digestFile)
		if err != nil {
			return fail(exitUsage, "--digest-file: %v", err)
		}
		co.digest = strings.TrimSpace(string(b))
	}
	if co.digest != "" && !strings.Contains(co.digest, ":") {
		return fail(exitUsage, "--digest wants user:password")
	}
	if _, err := co.tlsConfig(); err != nil {
		return err
	}
	if co.chroot != "" {
		if err := recipes.ValidatePath(co.chroot); err != nil {
			return fail(exitUsage, "--chroot: %v", err)
		}
	}
	return nil
}

// tlsConfig builds the TLS configuration of --tls-ca, --tls-cert and
// --tls-key, or nil without them.
func (co *commonOpts) tlsConfig() (*tls.Config, error) {
	if co.tlsCA == "" && co.tlsCert == "" && co.tlsKey == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if co.tlsCA != "" {
		pem, err := os.ReadFile(co.tlsCA)
		if err != nil {
			return nil, fail(exitUsage, "--tls-ca: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fail(exitUsage, "--tls-ca: no PEM certificate in %s", co.tlsCA)
		}
	}
	if (co.tlsCert == "") != (co.tlsKey == "") {
		return nil, fail(exitUsage, "--tls-cert and --tls-key go together")
	}
	if co.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(co.tlsCert, co.tlsKey)
		if err != nil {
			return nil, fail(exitUsage, "--tls-cert/--tls-key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// minSessionTimeout is the smallest session timeout recipes accepts.
const minSessionTimeout = 100 * time.Millisecond

// connect opens the session. ctx bounds it too (lock --timeout, a signal);
// --connect-timeout bounds it in any case. Unless --retry-refused it gives
// up as soon as every server has refused the connection. Its errors name
// the cause of each server's last failed attempt.
func (co *commonOpts) connect(ctx context.Context, log *slog.Logger, extra ...recipes.Option) (*recipes.Session, error) {
	servers, opts, err := co.sessionOptions(log, extra...)
	if err != nil {
		return nil, err
	}
	if !co.retryRefused {
		opts = append(opts, recipes.WithFailFast())
	}
	timedOut := fmt.Errorf("%w (%v)", errConnectTimeout, co.connectTimeout)

	cctx, cancel := context.WithTimeoutCause(ctx, co.connectTimeout, timedOut)
	defer cancel()
	sess, err := recipes.Connect(cctx, servers, opts...)
	if err == nil {
		return sess, nil
	}
	cause := context.Cause(cctx)
	switch {
	case errors.Is(cause, errInterrupted):
		return nil, errInterrupted
	case errors.Is(cause, context.DeadlineExceeded) && !errors.Is(cause, errConnectTimeout):
		// The caller's deadline (lock --timeout): it maps the error, which
		// still names the servers' causes.
		return nil, &connectError{err: err, deadline: true}
	case errors.Is(err, recipes.ErrUnreachable):
		return nil, fail(exitError, "cannot connect to ZooKeeper at %s: every server refused the connection: %v", co.servers.value, connectCause(err))
	case errors.Is(cause, errConnectTimeout):
		why := strings.TrimPrefix(strings.TrimPrefix(connectCause(err), timedOut.Error()), "; ")
		if why == "" {
			return nil, fail(exitError, "cannot connect to ZooKeeper at %s: %v", co.servers.value, timedOut)
		}
		return nil, fail(exitError, "cannot connect to ZooKeeper at %s: %v: %v", co.servers.value, timedOut, why)
	}
	return nil, fail(exitError, "cannot connect to ZooKeeper at %s: %v", co.servers.value, connectCause(err))
}

// sessionOptions returns the servers and the options of every session the
// command opens (Connect, and a Client's later sessions).
func (co *commonOpts) sessionOptions(log *slog.Logger, extra ...recipes.Option) ([]string, []recipes.Option, error) {
	servers, err := co.serverList()
	if err != nil {
		return nil, nil, err
	}
	opts := []recipes.Option{recipes.WithSessionTimeout(co.sessionTimeout), recipes.WithLogger(log)}
	if co.digest != "" {
		user, pass, _ := strings.Cut(co.digest, ":")
		opts = append(opts, recipes.WithDigestAuth(user, pass))
	}
	if co.chroot != "" {
		opts = append(opts, recipes.WithChroot(co.chroot))
	}
	if cfg, err := co.tlsConfig(); err != nil {
		return nil, nil, err
	} else if cfg != nil {
		opts = append(opts, recipes.WithTLS(cfg))
	}
	if co.metricsAddr != "" {
		mopt, err := serveMetrics(co.metricsAddr, log)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, mopt)
	}
	return servers, append(opts, extra...), nil
}

// connectError is a connect that the caller's own deadline ended.
type connectError struct {
	err      error
	deadline bool
}

func (e *connectError) Error() string { return connectCause(e.err) }
func (e *connectError) Unwrap() error {
	if e.deadline {
		return context.DeadlineExceeded
	}
	return e.err
}

// connectCause is Connect's error without its "recipes: connect to
// [servers]: " prefix, which our messages say already.
func connectCause(err error) string {
	s := err.Error()
	if rest, ok := strings.CutPrefix(s, "recipes: connect to "); ok {
		if i := strings.Index(rest, "]: "); i >= 0 {
			s = rest[i+3:]
		}
	}
	return strings.TrimPrefix(s, recipes.ErrUnreachable.Error()+": ")
}

var (
	errConnectTimeout = errors.New("no ZooKeeper session granted within --connect-timeout")
	errInterrupted    = errors.New("interrupted by a signal")
)

// parseArgs parses flags that may come before and after the positional
// arguments. It takes up to maxPos positional arguments; what follows them
// (or a "--") is returned as rest, unparsed: the command to run.
func parseArgs(fs *flag.FlagSet, args []string, maxPos int) (pos, rest []string, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		r := fs.Args()
		if n := len(args) - len(r); n > 0 && args[n-1] == "--" {
			return pos, r, nil
		}
		if len(r) == 0 {
			return pos, nil, nil
		}
		if len(pos) == maxPos {
			return pos, r, nil
		}
		pos = append(pos, r[0])
		args = r[1:]
	}
}

// newFlagSet returns a FlagSet whose errors and -h are handled by parse.
func newFlagSet(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("zkrecipes "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse runs parseArgs and turns -h and flag errors into the right output
// and exit code.
func parse(c *command, fs *flag.FlagSet, args []string, maxPos int, stdout io.Writer) (pos, rest []string, err error) {
	pos, rest, err = parseArgs(fs, args, maxPos)
	if errors.Is(err, flag.ErrHelp) {
		commandUsage(c, fs, stdout)
		return nil, nil, exitCode(exitOK)
	}
	if err != nil {
		return nil, nil, fail(exitUsage, "%v", err)
	}
	return pos, rest, nil
}

func commandUsage(c *command, fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, strings.TrimLeft(c.usage, "\n"))
	fmt.Fprint(w, "\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// checkPath validates a recipe path argument.
func checkPath(pos []string, what string) (string, error) {
	if len(pos) == 0 {
		return "", fail(exitUsage, "missing %s", what)
	}
	if err := recipes.ValidatePath(pos[0]); err != nil {
		return "", fail(exitUsage, "%v", err)
	}
	return pos[0], nil
}

// identity is what we store on our nodes: "host:pid".
func identity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}

// connectUntilSignal connects for the commands that run until interrupted
// (ls --watch, elect --listen, revoke): ctx ends at the first SIGINT, SIGTERM
// or SIGHUP. interrupted reports a signal during the connect (nothing to
// close then). done closes the session and stops catching signals.
func (co *commonOpts) connectUntilSignal(stderr io.Writer) (ctx context.Context, sess *recipes.Session, done func(), interrupted bool, err error) {
	log := co.logger(stderr)
	ctx, stop := signal.NotifyContext(context.Background(), forwardedSignals...)
	sess, err = co.connect(ctx, log)
	switch {
	case ctx.Err() != nil:
		if sess != nil {
			sess.Close()
		}
		stop()
		return nil, nil, nil, true, nil
	case err != nil:
		stop()
		return nil, nil, nil, false, err
	}
	return ctx, sess, func() { sess.Close(); stop() }, false, nil
}
