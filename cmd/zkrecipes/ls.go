package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
)

var lsCommand = &command{
	name:    "ls",
	summary: "show the holder and waiters of a lock, semaphore or election",
	usage: `
Usage:
  zkrecipes ls [--watch] [--json] [flags] PATH

Lists the queue at PATH: holders (or the leader) first, then waiters in
the order they will be served, with node name, kind, owning session, fencing
token, data (what the contender stored: "host:pid" for zkrecipes) and age.
The recipe is recognised by its node names: lock- (lock.Mutex, zk.Lock,
Curator InterProcessMutex), __READ__/__WRIT__ (read-write lock), latch-
(election, Curator LeaderLatch), and PATH/leases (semaphore, Curator
InterProcessSemaphoreV2). An empty or missing PATH lists nothing
and exits 0 ("no contenders"; "exists": false in JSON) unless --strict: then
a missing PATH exits 3. A holder whose data is "host:pid" of this host
where no process pid runs is marked NOT RUNNING ("not_running": true): it
died and its session has not expired yet.

--json prints one JSON object; with --watch, one per change (JSON lines).
ROLE is holder or waiter (lock, semaphore; "queued" for a semaphore's
internal waiting lock) and leader or candidate (election).

Examples:
  zkrecipes ls /jobs/nightly
  zkrecipes ls --json /jobs/nightly | jq -r '.contenders[0].data'
  zkrecipes ls --watch /svc/scheduler
`,
}

func init() { lsCommand.run = runLs }

// contenderJSON is one node in "ls --json".
type contenderJSON struct {
	Recipe   string    `json:"recipe"` // lock, rwlock, election, semaphore
	Role     string    `json:"role"`   // holder, waiter, queued, leader, candidate
	Position int       `json:"position"`
	Name     string    `json:"name"` // relative to PATH
	Kind     string    `json:"kind"`
	Seq      int64     `json:"seq"`
	Session  string    `json:"session"` // hex, 0x...
	Token    int64     `json:"token"`
	Data     string    `json:"data"`
	Created  time.Time `json:"created"`
	AgeMS    int64     `json:"age_ms"`
	// NotRunning: data is "host:pid" with host this host and no process
	// pid runs here (the holder died; its session has not expired yet).
	NotRunning bool `json:"not_running,omitempty"`
}

type listing struct {
	Path       string          `json:"path"`
	Exists     bool            `json:"exists"`
	Time       time.Time       `json:"time"`
	Recipes    []string        `json:"recipes"`
	Permits    int             `json:"permits,omitempty"` // semaphores
	Contenders []contenderJSON `json:"contenders"`
}

func runLs(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(lsCommand)
	var co commonOpts
	co.register(fs)
	watch := fs.Bool("watch", false, "print again on every change, until interrupted")
	asJSON := fs.Bool("json", false, "print JSON")
	var interval time.Duration
	durationVar(fs, &interval, "interval", 500*time.Millisecond, "with --watch: how often to look")
	strict := fs.Bool("strict", false, "exit 3 if PATH does not exist (at the first listing with --watch)")
	pos, rest, err := parse(lsCommand, fs, args, 1, stdout)
	if err != nil {
		return err
	}
	path, err := checkPath(pos, "PATH")
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fail(exitUsage, "unexpected argument %q", rest[0])
	}
	if err := co.check(); err != nil {
		return err
	}
	if interval <= 0 {
		return fail(exitUsage, "--interval must be positive")
	}
	ctx, sess, done, interrupted, err := co.connectUntilSignal(stderr)
	if interrupted {
		return fail(exitError, "interrupted")
	}
	if err != nil {
		return err
	}
	defer done()

	print := func(l *listing) error {
		if *asJSON {
			return json.NewEncoder(stdout).Encode(l)
		}
		printListing(stdout, l, *watch)
		return nil
	}
	if !*watch {
		l, err := list(ctx, sess, path)
		if err != nil {
			return err
		}
		if *strict && !l.Exists {
			return fail(exitNoSuchPath, "%s does not exist", path)
		}
		return print(l)
	}
	last := "\x00" // no listing printed yet
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		l, err := list(ctx, sess, path)
		switch {
		case ctx.Err() != nil:
			return nil // interrupted
		case err != nil && recipes.IsTransient(err) && sess.Err() == nil:
			sess.Logger().Warn("ls", "err", err)
		case err != nil:
			return err
		case *strict && last == "\x00" && !l.Exists:
			return fail(exitNoSuchPath, "%s does not exist", path)
		default:
			if sig := l.signature(); sig != last {
				last = sig
				if err := print(l); err != nil {
					return err
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// signature is what a change is: the nodes, roles and data, not the ages.
func (l *listing) signature() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d|", l.Permits)
	for _, c := range l.Contenders {
		fmt.Fprintf(&b, "%s %s %s %q|", c.Recipe, c.Role, c.Name, c.Data)
	}
	return b.String()
}

func printListing(w io.Writer, l *listing, stamp bool) {
	if stamp {
		fmt.Fprintf(w, "--- %s\n", l.Time.Format("15:04:05.000"))
	}
	if len(l.Contenders) == 0 {
		if l.Exists {
			fmt.Fprintf(w, "%s: no contenders\n", l.Path)
		} else {
			fmt.Fprintf(w, "%s: no contenders (no such node)\n", l.Path)
		}
		return
	}
	what := strings.Join(l.Recipes, ", ")
	if l.Permits > 0 {
		what += fmt.Sprintf(", %d permits", l.Permits)
	}
	fmt.Fprintf(w, "%s (%s)\n", l.Path, what)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tROLE\tNODE\tKIND\tSESSION\tTOKEN\tDATA\tAGE")
	for _, c := range l.Contenders {
		data := printable([]byte(c.Data))
		if c.NotRunning {
			data += " (NOT RUNNING)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.Position, c.Role, c.Name, c.Kind, c.Session, c.Token,
			data, age(time.Duration(c.AgeMS)*time.Millisecond))
	}
	tw.Flush()
}

func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// printable shows data as is if it is printable text, else quoted.
func printable(b []byte) string {
	s := string(b)
	if s == "" {
		return `""`
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == ' ' }) {
		return strconv.Quote(s)
	}
	return s
}

// list reads the queue(s) at path. The recipes are told apart by the
// names of path's children.
func list(ctx context.Context, sess *recipes.Session, path string) (*listing, error) {
	now := time.Now()
	l := &listing{Path: path, Time: now, Recipes: []string{}, Contenders: []contenderJSON{}}
	children, exists, err := children(ctx, sess, path)
	if err != nil {
		return nil, err
	}
	l.Exists = exists
	has := map[string]bool{}
	for _, c := range children {
		if c == "leases" {
			has["semaphore"] = true
		}
		for _, k := range []string{lock.Kind, lock.ReadKind, lock.WriteKind, election.Kind} {
			if _, ok := parseSeq(c, k); ok {
				has[k] = true
			}
		}
	}
	add := func(recipe string, cs []lock.Contender, role func(i int, c lock.Contender) string) {
		l.Recipes = append(l.Recipes, recipe)
		for i, c := range cs {
			l.Contenders = append(l.Contenders, contenderJSON{
				Recipe: recipe, Role: role(i, c), Position: i, Name: c.Name, Kind: c.Kind, Seq: c.Seq,
				Session: fmt.Sprintf("0x%x", c.Session), Token: int64(c.Token), Data: string(c.Data),
				Created: c.Created, AgeMS: now.Sub(c.Created).Milliseconds(),
				NotRunning: localProcessGone(c.Data),
			})
		}
	}
	if has[lock.Kind] {
		cs, err := lock.NewMutex(sess, path).Contenders(ctx)
		if err != nil {
			return nil, err
		}
		add("lock", cs, func(i int, _ lock.Contender) string { return holderIf(i == 0) })
	}
	if has[lock.ReadKind] || has[lock.WriteKind] {
		cs, err := lock.NewRWMutex(sess, path).Contenders(ctx)
		if err != nil {
			return nil, err
		}
		// Holders: a writer at the head, or the readers before the first writer.
		firstWriter := len(cs)
		for i, c := range cs {
			if c.Kind == lock.WriteKind {
				firstWriter = i
				break
			}
		}
		add("rwlock", cs, func(i int, c lock.Contender) string {
			return holderIf(i < firstWriter || (i == 0 && c.Kind == lock.WriteKind))
		})
	}
	if has[election.Kind] {
		ps, err := election.NewElection(sess, path).Participants(ctx)
		if err != nil {
			return nil, err
		}
		cs := make([]lock.Contender, len(ps))
		for i, p := range ps {
			seq, _ := parseSeq(p.Name, election.Kind)
			cs[i] = lock.Contender{Name: p.Name, Kind: election.Kind, Seq: seq, Session: p.Session, Token: p.Token, Data: p.Value, Created: p.Created}
		}
		add("election", cs, func(i int, _ lock.Contender) string {
			if i == 0 {
				return "leader"
			}
			return "candidate"
		})
	}
	if has["semaphore"] {
		permits, leases, err := semaphore(ctx, sess, path)
		if err != nil {
			return nil, err
		}
		l.Permits = permits
		guard, err := lock.NewMutex(sess, path+"/locks").Contenders(ctx)
		if err != nil {
			return nil, err
		}
		for i := range guard {
			guard[i].Name = "locks/" + guard[i].Name
		}
		n := len(leases)
		add("semaphore", append(leases, guard...), func(i int, _ lock.Contender) string {
			switch {
			case i >= n:
				return "queued"
			case permits <= 0 || i < permits:
				return "holder"
			}
			return "waiter"
		})
	}
	return l, nil
}

// localProcessGone reports whether data names ("host:pid", optionally
// followed by ";flags") a process of this host that does not run.
func localProcessGone(data []byte) bool {
	id, _ := parseNodeData(data)
	host, pidStr, ok := strings.Cut(id, ":")
	if !ok {
		return false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return false
	}
	me, err := os.Hostname()
	if err != nil || host != me {
		return false
	}
	return processGone(pid)
}

func holderIf(b bool) string {
	if b {
		return "holder"
	}
	return "waiter"
}

// children lists path's children; exists is false if path does not exist.
func children(ctx context.Context, sess *recipes.Session, path string) (names []string, exists bool, err error) {
	full := sess.Path(path)
	cs, err := core.Of(sess).Children(ctx, full)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", path, err)
	}
	return cs, true, nil
}

// semaphore reads a semaphore's permit count (the data of its node) and its
// permit nodes in order. The library has no Contenders for a Semaphore, so
// this reads the nodes itself.
func semaphore(ctx context.Context, sess *recipes.Session, path string) (int, []lock.Contender, error) {
	get := func(p string) (core.Node, error) { return core.Of(sess).Get(ctx, sess.Path(p)) }
	permits := 0
	if n, err := get(path); err == nil {
		permits, _ = strconv.Atoi(string(n.Data))
	} else if !errors.Is(err, zk.ErrNoNode) {
		return 0, nil, fmt.Errorf("read %s: %w", path, err)
	}
	names, _, err := children(ctx, sess, path+"/leases")
	if err != nil {
		return 0, nil, err
	}
	var out []lock.Contender
	for _, name := range names {
		seq, ok := parseSeq(name, lock.LeaseKind)
		if !ok {
			continue
		}
		n, err := get(path + "/leases/" + name)
		if errors.Is(err, zk.ErrNoNode) {
			continue // released meanwhile
		}
		if err != nil {
			return 0, nil, fmt.Errorf("read %s: %w", name, err)
		}
		out = append(out, lock.Contender{
			Name: "leases/" + name, Kind: lock.LeaseKind, Seq: seq, Session: n.Stat.EphemeralOwner,
			Token: recipes.Token(n.Stat.Czxid), Data: n.Data, Created: time.UnixMilli(n.Stat.Ctime),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return permits, out, nil
}

// parseSeq recognises a contender node name: "<anything><kind><10 digits>".
func parseSeq(name, kind string) (int64, bool) {
	const digits = 10
	if len(name) < len(kind)+digits {
		return 0, false
	}
	cut := len(name) - digits
	for _, r := range name[cut:] {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	if !strings.HasSuffix(name[:cut], kind) {
		return 0, false
	}
	seq, err := strconv.ParseInt(name[cut:], 10, 64)
	return seq, err == nil
}
