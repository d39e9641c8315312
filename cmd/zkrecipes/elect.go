package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/recipes"
)

var electCommand = &command{
	name:    "elect",
	summary: "run a command while leader of an election, or watch the leader",
	usage: `
Usage:
  zkrecipes elect [flags] PATH [--] CMD [ARGS...]
  zkrecipes elect --listen [--json] [flags] PATH

The first form campaigns in the election at PATH (Curator LeaderLatch
compatible; our candidate's value is "host:pid") and, once leader, runs CMD
with the term's fencing token in ZKRECIPES_TOKEN. When CMD exits we resign
and exit with its status. If leadership is lost while CMD runs, CMD gets
SIGTERM, then SIGKILL after --grace; then zkrecipes campaigns again (on a
new session if the old one is over) and runs CMD anew, with a new token,
once elected again. With --once (or --try) it exits 5 instead. Signals are
handled as by "zkrecipes lock" (see "zkrecipes lock -h").

The second form prints the leader, then every change of leader, one per
line, until interrupted (then it exits 0). It keeps listening across
session changes (it opens a new session when one is lost).

With --try it exits 3 at once if someone else leads or campaigns ahead of
us. On a terminal, or with -v, it says who leads while it waits, and how
long it waited once elected.

Exit codes: 0..255 CMD's status; 1 error; 2 usage; 3 led by someone else
(--try); 4 timeout; 5 leadership lost (--once, --try); 126/127 CMD not runnable.

Examples:
  zkrecipes elect /svc/scheduler -- ./scheduler --token-env ZKRECIPES_TOKEN
  zkrecipes elect --listen /svc/scheduler
  zkrecipes elect --listen --json /svc/scheduler | jq -r .value
`,
}

func init() { electCommand.run = runElect }

func runElect(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(electCommand)
	var co commonOpts
	var ho holdOpts
	co.register(fs)
	ho.register(fs, "leadership")
	listen := fs.Bool("listen", false, "do not campaign: print leadership changes until interrupted")
	asJSON := fs.Bool("json", false, "with --listen: print JSON lines")
	onceFlag := fs.Bool("once", false, "exit (status 5) when leadership is lost instead of campaigning again")
	pos, argv, err := parse(electCommand, fs, args, 1, stdout)
	if err != nil {
		return err
	}
	path, err := checkPath(pos, "PATH")
	if err != nil {
		return err
	}
	if err := co.check(); err != nil {
		return err
	}
	policy, err := ho.check()
	if err != nil {
		return err
	}
	if *listen {
		if len(argv) > 0 {
			return fail(exitUsage, "--listen takes no command (got %q)", argv[0])
		}
		if ho.try {
			return fail(exitUsage, "--try goes with campaigning, not --listen")
		}
		return listenElection(&co, path, *asJSON, stdout, stderr)
	}
	if *asJSON {
		return fail(exitUsage, "--json goes with --listen")
	}
	if len(argv) == 0 {
		return fail(exitUsage, "missing CMD to run while leader (or --listen)")
	}
	cmdPath, err := lookCommand(argv)
	if err != nil {
		return err
	}
	log := co.logger(stderr)

	hold, err := startHolding(&co, ho.timeout, policy, log, "connecting for election "+path)
	if err != nil {
		return err
	}
	defer hold.stop()
	// A Client takes over the first session and opens a new one whenever
	// a session is lost, so that we can campaign again (unless --once).
	servers, opts, err := co.sessionOptions(log, recipes.WithLossPolicy(policy))
	if err != nil {
		return err
	}
	client, err := recipes.NewClient(servers, opts, recipes.WithFirstSession(hold.sess))
	if err != nil {
		return err
	}
	defer client.Close()
	once := *onceFlag || ho.try
	ctx := hold.ctx // --timeout bounds the first campaign only
	for round := 1; ; round++ {
		lost, err := electRound(ctx, client, hold.sigs, &co, &ho, path, cmdPath, argv, stderr, log)
		if err != nil || !lost {
			return err
		}
		if once {
			return exitCode(exitLost)
		}
		fmt.Fprintf(stderr, "zkrecipes: leadership of %s lost; campaigning again (round %d; --once exits instead)\n", path, round+1)
		ctx = context.Background()
	}
}

// electRound waits for a live session, campaigns on it and runs CMD while
// leading. lost says the term (or the session we campaigned on) was lost
// (CMD, if it ran, was stopped); otherwise err carries the exit code.
func electRound(ctx context.Context, client *recipes.Client, sigs *signals, co *commonOpts, ho *holdOpts,
	path, cmdPath string, argv []string, stderr io.Writer, log *slog.Logger) (lost bool, err error) {
	sess, sig, err := during(ctx, sigs, client.Live)
	if sig != nil {
		return false, exitCode(signalStatus(sig))
	}
	if err != nil {
		return false, waitError(err, "connecting for election "+path, ho.timeout)
	}
	e := election.NewElection(sess, path, election.WithValue(nodeData()))
	prog := newProgress(co, stderr, "leadership of "+path, "led by")
	var show func(queueView) bool
	switch {
	case ho.try:
		show = func(v queueView) bool { return v.ahead > 0 }
	case prog != nil:
		show = func(v queueView) bool { prog.show(v); return false }
	}
	term, sig, err := during(ctx, sigs, func(ctx context.Context) (*election.Term, error) {
		return whileWaiting(ctx, sess, path, electionQueue(e), show, e.Acquire)
	})
	if err == nil && sig != nil {
		resign(term, sess)
	}
	if sig != nil {
		return false, exitCode(signalStatus(sig))
	}
	switch {
	case errors.Is(err, errBusy):
		return false, fail(exitHeld, "election %s is led by someone else%s", path, describeLeader(sess, e))
	case err != nil && sess.Err() != nil && ctx.Err() == nil && !ho.try:
		return true, nil // the session ended while we waited: campaign on the next one
	case err != nil:
		return false, waitError(err, "campaigning in election "+path+describeLeader(sess, e), ho.timeout)
	}
	prog.granted("won", term.Token())
	log.Info("elected", "path", path, "token", term.Token(), "node", term.Path())

	env := []string{
		"ZKRECIPES_TOKEN=" + term.Token().String(),
		"ZKRECIPES_ELECTION_PATH=" + path,
		"ZKRECIPES_NODE=" + term.Path(),
	}
	if err := term.Err(); err != nil { // lost already: do not start CMD
		resign(term, sess)
		log.Warn("leadership lost before CMD started", "path", path, "err", err)
		return true, nil
	}
	ch, err := startChild(cmdPath, argv, env, ho.foreground, log)
	if err != nil {
		resign(term, sess)
		return false, err
	}
	res := ch.supervise(supervision{
		sigs: sigs, ended: term.Done(), cause: term.Err, grace: ho.grace, killAfter: ho.killAfter,
		what: "leadership of " + path, stderr: stderr,
	})
	resign(term, sess)
	if res.ended != nil {
		return true, nil
	}
	return false, exitCode(res.status)
}

// describeLeader says who leads, for error messages.
func describeLeader(sess *recipes.Session, e *election.Election) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ps, err := e.Participants(ctx)
	if err != nil || len(ps) == 0 {
		return ""
	}
	n := 0 // other candidates
	for _, p := range ps[1:] {
		if p.Session != sess.ID() {
			n++
		}
	}
	l := ps[0]
	return fmt.Sprintf(" (led by %q, session 0x%x, token %v, %d other candidates waiting)", l.Value, l.Session, l.Token, n)
}

func resign(t *election.Term, sess *recipes.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), sess.Timeout()+5*time.Second)
	defer cancel()
	if err := t.Release(ctx); err != nil {
		sess.Logger().Warn("resign", "node", t.Path(), "err", err)
	}
}

// leaderJSON is one line of "elect --listen --json".
type leaderJSON struct {
	Time    time.Time  `json:"time"`
	Leader  bool       `json:"leader"` // false: nobody leads
	Name    string     `json:"name,omitempty"`
	Value   string     `json:"value,omitempty"`
	Token   int64      `json:"token,omitempty"`
	Session string     `json:"session,omitempty"`
	Created *time.Time `json:"created,omitempty"`
}

func listenElection(co *commonOpts, path string, asJSON bool, stdout, stderr io.Writer) error {
	ctx, sess, done, interrupted, err := co.connectUntilSignal(stderr)
	if interrupted {
		return nil // interrupted
	}
	if err != nil {
		return err
	}
	defer done()
	// Keep listening across session changes: a Client takes the session
	// over and opens a new one when it is lost.
	servers, opts, err := co.sessionOptions(co.logger(stderr))
	if err != nil {
		return err
	}
	client, err := recipes.NewClient(servers, opts, recipes.WithFirstSession(sess))
	if err != nil {
		return err
	}
	defer client.Close()
	e := election.NewElection(client, path)
	enc := json.NewEncoder(stdout)
	for l := range e.Observe(ctx) {
		now := time.Now()
		if asJSON {
			line := leaderJSON{Time: now, Leader: l.Name != ""}
			if line.Leader {
				created := l.Created
				line.Name, line.Value, line.Token = l.Name, string(l.Value), int64(l.Token)
				line.Session, line.Created = fmt.Sprintf("0x%x", l.Session), &created
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
			continue
		}
		ts := now.Format("2006-01-02T15:04:05.000Z07:00")
		if l.Name == "" {
			fmt.Fprintf(stdout, "%s no leader\n", ts)
		} else {
			fmt.Fprintf(stdout, "%s leader value=%s token=%v session=0x%x node=%s\n", ts, printable(l.Value), l.Token, l.Session, l.Name)
		}
	}
	if ctx.Err() != nil {
		return nil // interrupted: the normal way to stop
	}
	err = sess.Err()
	if err == nil {
		err = errors.New("observation ended")
	}
	return fail(exitError, "watching election %s: %v", path, err)
}
