package main

import (
	"fmt"
	"io"
	"time"

	"github.com/zkrecipes/zkrecipes/lock"
)

var revokeCommand = &command{
	name:    "revoke",
	summary: "ask the holder of a lock to release it, or break the lock",
	usage: `
Usage:
  zkrecipes revoke [flags] PATH
  zkrecipes revoke --break-after DURATION --yes [flags] PATH

Asks the current holders of the lock at PATH (a mutex, or a read-write
lock's writer or leading readers) to release it, by writing Curator's
revocation message on their nodes. Holders that are revocable notice:
"zkrecipes lock --revocable" stops its command and releases (exit 6),
Curator holders made revocable and lock.WithRevocable holders are told.
Others do not notice.

With --break-after it then waits up to DURATION for the holders to release,
and deletes the nodes of those that did not: a forced break. The next
contender then gets the lock with a larger fencing token, which fences
off any write the broken holder still makes (if the resource checks
tokens); the broken holder itself may go on running for a while. A
"zkrecipes lock" holder notices at once, stops its command and exits 5.
Because this can let two processes act at once on resources that do not
check tokens, it needs --yes.

Exit codes: 0 done (also when nobody held the lock); 1 error; 2 usage.

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
	breakAfter := fs.Duration("break-after", 0, "if the holders have not released after this, delete their nodes (needs --yes)")
	yes := fs.Bool("yes", false, "confirm a forced break (--break-after)")
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
	case *breakAfter < 0:
		return fail(exitUsage, "--break-after must not be negative")
	case *breakAfter > 0 && !*yes:
		return fail(exitUsage, "--break-after %v forcibly breaks the lock at %s if its holder does not release in time; "+
			"a holder that does not notice may go on writing alongside the next one (only fencing tokens stop it). "+
			"Add --yes to confirm", *breakAfter, path)
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
	holders, broken, err := lock.Revoke(ctx, sess, path, *breakAfter)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	if len(holders) == 0 {
		fmt.Fprintf(stdout, "%s: not held\n", path)
		return nil
	}
	for _, h := range holders {
		fmt.Fprintf(stdout, "asked %s to release: %s (session 0x%x, token %v)\n", printable(h.Data), h.Name, h.Session, h.Token)
	}
	switch {
	case broken:
		fmt.Fprintf(stdout, "%s: BROKEN after %v: holder nodes deleted\n", path, time.Since(start).Round(time.Millisecond))
	case *breakAfter > 0:
		fmt.Fprintf(stdout, "%s: released after %v\n", path, time.Since(start).Round(time.Millisecond))
	}
	return nil
}
