package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
)

var lockCommand = &command{
	name:    "lock",
	summary: "run a command while holding a lock (like flock(1))",
	usage: `
Usage:
  zkrecipes lock [flags] PATH [--] CMD [ARGS...]

Acquires the lock at PATH (a lock.Mutex: Curator InterProcessMutex and
go-zookeeper zk.Lock compatible; the node's data is "host:pid"), runs CMD
with the fencing token in ZKRECIPES_TOKEN, and releases the lock when CMD
exits. zkrecipes exits with CMD's status.

If the lock is lost while CMD runs (session expired, connection suspended
for too long, node deleted by "zkrecipes revoke --break-after"), CMD gets
SIGTERM, then SIGKILL after --grace, and zkrecipes exits 5. With
--max-hold the lock also ends that long after it was granted, even while
CMD runs and the session is fine (as a Redis lock's PX does): CMD is
stopped the same way, the lock goes to the next waiter, and zkrecipes exits
7. SIGINT, SIGTERM
and SIGHUP sent to zkrecipes are passed on to CMD; the lock is released once
CMD exits. While waiting for the lock they abort the wait (exit 128+signal).

CMD runs in its own process group, and signals go to the whole group, unless
--foreground (the default when stdin is a terminal): then CMD can use the
terminal but only CMD itself is signalled, not the processes it started.

A lock holder that was frozen (GC, SIGSTOP, a stopped VM) may run on after
its lock went to someone else: pass $ZKRECIPES_TOKEN with every write and
have the resource reject tokens smaller than the largest it has seen.

Exit codes: 0..255 CMD's status; 1 error; 2 usage; 3 held (--try);
4 timeout; 5 lock lost; 6 revoked (--revocable); 7 maximum hold time ran
out (--max-hold); 126/127 CMD not runnable.

Examples:
  zkrecipes lock /jobs/nightly -- ./nightly.sh
  zkrecipes lock --try /jobs/nightly -- ./nightly.sh || echo "already running"
  zkrecipes lock --timeout 5m /deploy -- sh -c 'deploy --fencing-token "$ZKRECIPES_TOKEN"'
`,
}

func init() { lockCommand.run = runLock }

type holdOpts struct {
	timeout    time.Duration
	grace      time.Duration
	killAfter  time.Duration
	foreground bool
	lossPolicy string
	try        bool
}

func (h *holdOpts) register(fs *flag.FlagSet, what string) {
	durationVar(fs, &h.timeout, "timeout", 0, "give up (exit 4) if the "+what+" is not won within this `duration`, e.g. 5m (0: wait forever)")
	durationVar(fs, &h.grace, "grace", 10*time.Second, "after SIGTERM on loss, wait this long before SIGKILL")
	durationVar(fs, &h.killAfter, "kill-after", 0, "when a signal sent to zkrecipes is passed on to CMD and CMD has not exited after this `duration`, SIGKILL it (0: only at the third signal)")
	fs.BoolVar(&h.try, "try", false, "fail at once (exit 3) if the "+what+" is held by someone else")
	fs.BoolVar(&h.foreground, "foreground", isTerminal(os.Stdin), "keep CMD in our process group: it can use the terminal, but only CMD itself is signalled, not its children (default: true if stdin is a terminal)")
	fs.StringVar(&h.lossPolicy, "loss-policy", "suspend", "when is the "+what+" lost: `suspend` (as soon as the connection to ZooKeeper is down: safest) or session (only when the session ends)")
}

func (h *holdOpts) check() (recipes.LossPolicy, error) {
	if h.timeout < 0 {
		return 0, fail(exitUsage, "--timeout must not be negative")
	}
	if h.grace < 0 {
		return 0, fail(exitUsage, "--grace must not be negative")
	}
	if h.killAfter < 0 {
		return 0, fail(exitUsage, "--kill-after must not be negative")
	}
	switch h.lossPolicy {
	case "suspend":
		return recipes.LoseOnSuspend, nil
	case "session":
		return recipes.LoseOnSessionEnd, nil
	}
	return 0, fail(exitUsage, "--loss-policy must be suspend or session, not %q", h.lossPolicy)
}

func runLock(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(lockCommand)
	var co commonOpts
	var ho holdOpts
	co.register(fs)
	ho.register(fs, "lock")
	var maxHold time.Duration
	durationVar(fs, &maxHold, "max-hold", 0, "end the lock this `duration` after it was granted, stopping CMD as on loss (exit 7), e.g. 30m (0: no limit)")
	revocable := fs.Bool("revocable", false, "honour \"zkrecipes revoke\": stop CMD as on loss, release, exit 6 (the node's data is then \"host:pid;revocable\")")
	pos, argv, err := parse(lockCommand, fs, args, 1, stdout)
	if err != nil {
		return err
	}
	path, err := checkPath(pos, "PATH")
	if err != nil {
		return err
	}
	if len(argv) == 0 {
		return fail(exitUsage, "missing CMD to run under the lock")
	}
	if err := co.check(); err != nil {
		return err
	}
	if maxHold < 0 {
		return fail(exitUsage, "--max-hold must not be negative")
	}
	policy, err := ho.check()
	if err != nil {
		return err
	}
	cmdPath, err := lookCommand(argv)
	if err != nil {
		return err
	}
	log := co.logger(stderr)

	hold, err := startHolding(&co, ho.timeout, policy, log, fmt.Sprintf("connecting for lock %s", path))
	if err != nil {
		return err
	}
	defer hold.stop()
	ctx, sigs, sess := hold.ctx, hold.sigs, hold.sess

	data := nodeData()
	if *revocable {
		data = nodeData(flagRevocable)
	}
	opts := []lock.Option{lock.WithData(data), lock.WithNodeWatch()}
	if *revocable {
		opts = append(opts, lock.WithRevocable())
	}
	if maxHold > 0 {
		opts = append(opts, lock.WithMaxHold(maxHold))
	}
	m := lock.NewMutex(sess, path, opts...)
	prog := newProgress(&co, stderr, "lock "+path, "held by")
	lease, sig, err := during(ctx, sigs, func(ctx context.Context) (*lock.Lease, error) {
		if ho.try {
			return m.TryAcquire(ctx)
		}
		var show func(queueView) bool
		if prog != nil {
			show = func(v queueView) bool { prog.show(v); return false }
		}
		return whileWaiting(ctx, sess, path, mutexQueue(m), show, m.Acquire)
	})
	if err == nil && sig != nil {
		release(lease, sess)
	}
	if sig != nil {
		return exitCode(signalStatus(sig))
	}
	switch {
	case errors.Is(err, lock.ErrLocked):
		return fail(exitHeld, "lock %s is busy%s", path, describeHolder(sess, m))
	case err != nil:
		return waitError(err, "waiting for lock "+path+describeHolder(sess, m), ho.timeout)
	}
	prog.granted("got", lease.Token())
	log.Info("lock acquired", "path", path, "token", lease.Token(), "node", lease.Path())

	env := []string{
		"ZKRECIPES_TOKEN=" + lease.Token().String(),
		"ZKRECIPES_LOCK_PATH=" + path,
		"ZKRECIPES_NODE=" + lease.Path(),
	}
	if err := lease.Err(); err != nil { // lost already: do not start CMD
		release(lease, sess)
		return fail(exitLost, "lock %s: %v", path, err)
	}
	ch, err := startChild(cmdPath, argv, env, ho.foreground, log)
	if err != nil {
		release(lease, sess)
		return err
	}
	// Lost: Done closes. Revoked (WithRevocable): Context is cancelled
	// while Done stays open.
	ended := lease.Done()
	if *revocable {
		ended = lease.Context().Done()
	}
	sup := supervision{
		sigs: sigs, ended: ended, grace: ho.grace, killAfter: ho.killAfter, what: "lock " + path, stderr: stderr,
		cause: func() error {
			if lease.Err() == nil {
				return context.Cause(lease.Context())
			}
			return lease.Err()
		},
	}
	if *revocable {
		// The revoker wrote Curator's revocation message over our
		// identity: put it back, marked, for ls and revoke to show.
		sup.onEnded = func() {
			if lease.Err() == nil {
				setNodeData(sess, lease.Path(), nodeData(flagRevocable, flagRevoked))
			}
		}
	}
	res := ch.supervise(sup)
	release(lease, sess)
	switch {
	case res.ended == nil:
		return exitCode(res.status)
	case errors.Is(res.ended, lock.ErrRevoked) && !errors.Is(res.ended, lock.ErrLost):
		return exitCode(exitRevoked)
	case errors.Is(res.ended, lock.ErrMaxHold):
		return exitCode(exitMaxHold)
	default:
		return exitCode(exitLost)
	}
}

// release gives the lock up, waiting a bounded time for the delete.
func release(l *lock.Lease, sess *recipes.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), sess.Timeout()+5*time.Second)
	defer cancel()
	if err := l.Release(ctx); err != nil {
		sess.Logger().Warn("release", "node", l.Path(), "err", err)
	}
}

// setNodeData writes data on our node, if it still exists; for display
// only, so errors are only logged.
func setNodeData(sess *recipes.Session, path string, data []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	full := sess.Path(path)
	_, err := core.Of(sess).Set(ctx, full, data, -1)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		sess.Logger().Debug("restore node data", "node", path, "err", err)
	}
}

// waitError maps an error from connecting, acquiring or campaigning.
func waitError(err error, doing string, timeout time.Duration) error {
	var e *exitErr
	var ce *connectError
	switch {
	case errors.As(err, &e):
		return err
	case errors.As(err, &ce) && ce.deadline:
		return fail(exitTimeout, "timed out after %v %s: %v", timeout, doing, ce)
	case errors.Is(err, context.DeadlineExceeded):
		return fail(exitTimeout, "timed out after %v %s", timeout, doing)
	default:
		return fail(exitError, "%s: %v", doing, err)
	}
}

// describeHolder says who holds the lock, for error messages.
func describeHolder(sess *recipes.Session, m *lock.Mutex) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cs, err := m.Contenders(ctx)
	if err != nil || len(cs) == 0 {
		return ""
	}
	h := cs[0]
	return fmt.Sprintf(" (held by %q, session 0x%x, token %v, %d waiting)", h.Data, h.Session, h.Token, len(cs)-1)
}
