package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
)

var revokeCommand = &command{
	name:    "revoke",
	summary: "ask the holder of a lock to release it, or break the lock",
	usage: `
Usage:
  zkrecipes revoke [--force] [flags] PATH
  zkrecipes revoke --break-after DURATION --yes [flags] PATH

Asks the current holders of the lock at PATH (a mutex, or a read-write
lock's writer or leading readers) to release it, by writing Curator's
revocation message on their nodes. Only holders that opted in notice:
"zkrecipes lock --revocable" (its node's data reads "host:pid;revocable")
stops its command and releases (exit 6).

A holder that did not opt in would not notice: revoke says so, leaves its
node alone and exits 3. --force writes the request anyway, for holders
revoke cannot recognise (Curator holders made revocable, programs using
lock.WithRevocable); it overwrites their node's data.

With --break-after it then waits up to DURATION for the holders to release,
and deletes the nodes of those that did not: a forced break. The next
contender then gets the lock with a larger fencing token, which fences
off any write the broken holder still makes (if the resource checks
tokens); the broken holder itself may go on running for a while. A
"zkrecipes lock" holder notices at once, stops its command and exits 5.
Because this can let two processes act at once on resources that do not
check tokens, it needs --yes.

Elections and semaphores cannot be revoked: revoke refuses them (exit 2).

Exit codes: 0 done (also when nobody held the lock); 1 error; 2 usage (or
PATH is not a lock); 3 a holder did not opt in to revocation: nothing done.

Examples:
  zkrecipes revoke /jobs/nightly
  zkrecipes revoke --break-after 30s --yes /jobs/nightly
`,
}

func init() { revokeCommand.run = runRevoke }

func runRevoke(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(revokeCommand)
	var co commonOpts
	co.register(fs)
	var breakAfter time.Duration
	durationVar(fs, &breakAfter, "break-after", 0, "if the holders have not released after this `duration`, delete their nodes (needs --yes)")
	yes := fs.Bool("yes", false, "confirm a forced break (--break-after)")
	force := fs.Bool("force", false, "ask holders that did not opt in too (overwrites their node's data with the revocation message)")
	pos, rest, err := parse(revokeCommand, fs, args, 1, stdout)
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
	switch {
	case breakAfter < 0:
		return fail(exitUsage, "--break-after must not be negative")
	case breakAfter > 0 && !*yes:
		return fail(exitUsage, "--break-after %v forcibly breaks the lock at %s if its holder does not release in time; "+
			"a holder that does not notice may go on writing alongside the next one (only fencing tokens stop it). "+
			"Add --yes to confirm", breakAfter, path)
	}
	ctx, sess, done, interrupted, err := co.connectUntilSignal(stderr)
	if interrupted {
		return fail(exitError, "interrupted")
	}
	if err != nil {
		return err
	}
	defer done()

	start := time.Now()
	holders, err := lockHolders(ctx, sess, path)
	if err != nil {
		return err
	}
	if len(holders) == 0 {
		fmt.Fprintf(stdout, "%s: not held\n", path)
		return nil
	}
	var refused []lock.Contender
	for _, h := range holders {
		id, _ := parseNodeData(h.Data)
		node := fmt.Sprintf("%s (session 0x%x, token %v)", h.Name, h.Session, h.Token)
		switch {
		case string(h.Data) == lock.RevokeMessage:
			fmt.Fprintf(stdout, "already asked to release: %s; its identity was overwritten by the request\n", node)
		case hasFlag(h.Data, flagRevoked):
			fmt.Fprintf(stdout, "already asked %s to release: %s; it is releasing\n", id, node)
		case hasFlag(h.Data, flagRevocable) || *force:
			if err := setData(ctx, sess, path+"/"+h.Name, []byte(lock.RevokeMessage)); err != nil {
				return fail(exitError, "revoke %s: %v", path, err)
			}
			fmt.Fprintf(stdout, "asked %s to release: %s\n", printable(h.Data), node)
		default:
			refused = append(refused, h)
			fmt.Fprintf(stderr, "zkrecipes revoke: %s cannot be revoked: it did not opt in (zkrecipes lock --revocable) and would not notice: %s\n", printable(h.Data), node)
		}
	}
	if breakAfter <= 0 {
		if len(refused) > 0 {
			return fail(exitNotRevocable, "nothing asked of %d holder(s) of %s; --break-after D --yes breaks the lock after D, --force asks anyway (for Curator or lock.WithRevocable holders)", len(refused), path)
		}
		return nil
	}
	broken, err := lock.Break(ctx, sess, path, holders, breakAfter)
	switch {
	case ctx.Err() != nil:
		return fail(exitError, "interrupted")
	case err != nil:
		return fail(exitError, "break %s: %v", path, err)
	case broken:
		fmt.Fprintf(stdout, "%s: BROKEN after %v: holder nodes deleted\n", path, time.Since(start).Round(time.Millisecond))
	default:
		fmt.Fprintf(stdout, "%s: released after %v\n", path, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// lockHolders returns the holders of the lock at path: a mutex's first
// contender, or a read-write lock's writer or leading readers. Elections
// and semaphores are usage errors: they have no revocation.
func lockHolders(ctx context.Context, sess *recipes.Session, path string) ([]lock.Contender, error) {
	names, _, err := children(ctx, sess, path)
	if err != nil {
		return nil, err
	}
	has := map[string]bool{}
	for _, c := range names {
		if c == "leases" {
			has["semaphore"] = true
		}
		for _, k := range []string{lock.Kind, lock.ReadKind, lock.WriteKind, election.Kind} {
			if _, ok := parseSeq(c, k); ok {
				has[k] = true
			}
		}
	}
	switch {
	case has[lock.Kind]:
		cs, err := lock.NewMutex(sess, path).Contenders(ctx)
		if err != nil || len(cs) == 0 {
			return nil, err
		}
		return cs[:1], nil
	case has[lock.ReadKind] || has[lock.WriteKind]:
		cs, err := lock.NewRWMutex(sess, path).Contenders(ctx)
		if err != nil || len(cs) == 0 {
			return nil, err
		}
		if cs[0].Kind != lock.ReadKind {
			return cs[:1], nil
		}
		n := 0
		for n < len(cs) && cs[n].Kind == lock.ReadKind {
			n++
		}
		return cs[:n], nil
	case has[election.Kind]:
		return nil, fail(exitUsage, "%s is a leader election, not a lock: a leader cannot be revoked (see who leads with \"zkrecipes ls %s\")", path, path)
	case has["semaphore"]:
		return nil, fail(exitUsage, "%s is a semaphore, not a lock: its permits cannot be revoked", path)
	}
	return nil, nil
}

func setData(ctx context.Context, sess *recipes.Session, path string, data []byte) error {
	full := sess.Path(path)
	_, err := core.Of(sess).Set(ctx, full, data, -1)
	if errors.Is(err, zk.ErrNoNode) {
		return nil // released meanwhile
	}
	return err
}
