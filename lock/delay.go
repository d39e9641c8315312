package lock

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/internal/core"
)

// DelayNode is the name of the lock-delay marker, a persistent child of the
// lock's node kept by holders that use WithLockDelay. Being persistent, it
// keeps the lock's container node (and itself) alive after a holder died,
// until the next holder has waited out the delay; a clean Release deletes
// it, after which the server reaps the empty lock node as usual.
//
// The name is chosen so that other lock clients on the same path pass it
// by: it is not a contender of any of our kinds, Curator and kazoo sort it
// after every contender, and go-zookeeper's zk.Lock parses its suffix as the
// largest possible sequence number (so it never precedes a real contender).
const DelayNode = "zkrecipes.delay__2147483647"

// Marker data. "held:<node>" while a holder that uses WithLockDelay holds;
// "gone:<node>" once a contender found that holder's node deleted without a
// clean release, stamped by the server with the marker's mtime (or, when
// rewritten, "gone:<node>@<unix ms>" carrying the first stamp along).
const (
	heldPrefix = "held:"
	gonePrefix = "gone:"
)

// delayAfterAbandon runs once e heads the queue. If the previous holder
// recorded itself in the marker and its node is gone without a clean
// release, it waits until the lock-delay has passed since the first
// contender noticed (a Try form returns ErrBlocked while it runs), then
// records e as the holder.
//
// The delay is measured on the server's clock: the notice is the mtime of
// the write that recorded it, and a later contender learns the server's
// current time from the mtime of its own write to the marker. So it does
// not restart for each contender, and does not depend on the clients'
// clocks.
func (b *queue) delayAfterAbandon(ctx context.Context, q *contend.Queue, e *contend.Entry, try bool) error {
	marker := q.Dir + "/" + DelayNode
	wait, err := b.delayLeft(ctx, q, marker, e)
	if err != nil {
		return err
	}
	if wait > 0 {
		if try {
			return contend.ErrBlocked // the lock-delay is still running
		}
		if err := sleep(ctx, q.Sess, wait); err != nil {
			return err
		}
	}
	err = q.Sess.Retry(ctx, func(ctx context.Context) error {
		return writeMarker(ctx, q, marker, heldPrefix+e.Node.Name, -1)
	})
	if errors.Is(err, zk.ErrNoNode) {
		return contend.ErrNodeGone // the lock node cannot vanish while we are in it
	}
	return err
}

// delayLeft reads the marker and returns how much of the lock-delay is
// left, recording the previous holder's disappearance when we are the first
// to notice it.
func (b *queue) delayLeft(ctx context.Context, q *contend.Queue, marker string, e *contend.Entry) (time.Duration, error) {
	sess := q.Sess
	for {
		var g core.Node
		err := sess.Retry(ctx, func(ctx context.Context) error {
			var err error
			g, err = sess.Get(ctx, marker)
			return err
		})
		if errors.Is(err, zk.ErrNoNode) {
			return 0, nil // no holder recorded: a clean release, or the first use
		}
		if err != nil {
			return 0, err
		}
		data := string(g.Data)
		if prev, ok := strings.CutPrefix(data, heldPrefix); ok {
			if prev == e.Node.Name {
				return 0, nil
			}
			there, _, err := sess.Exists(ctx, q.Dir+"/"+prev)
			if err != nil {
				return 0, err
			}
			if there {
				return 0, nil // only a foreign tool could get here: nothing to wait for
			}
			sess.Logger().Info("lock-delay: previous holder vanished without releasing",
				"lock", b.path, "previous", prev, "delay", b.opts.lockDelay)
			// Our write's mtime is the notice, on the server's clock.
			err = writeMarker(ctx, q, marker, gonePrefix+prev, g.Stat.Version)
			if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
				continue // changed meanwhile: read again
			}
			if err != nil {
				return 0, err
			}
			return b.opts.lockDelay, nil
		}
		rest, ok := strings.CutPrefix(data, gonePrefix)
		if !ok {
			return 0, nil // not ours to interpret
		}
		noticed := g.Stat.Mtime
		if name, ms, ok := strings.Cut(rest, "@"); ok {
			if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
				noticed, rest = n, name
			}
		}
		// Learn the server's time now from a write that keeps the notice.
		st, err := sess.Set(ctx, marker, []byte(gonePrefix+rest+"@"+strconv.FormatInt(noticed, 10)), g.Stat.Version)
		if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return delayRemaining(b.opts.lockDelay, noticed, st.Mtime), nil
	}
}

// delayRemaining returns what is left of delay noticed ms after the epoch
// when the server's clock reads now ms. A clock that went backwards counts
// as no time passed: the delay is never cut short.
func delayRemaining(delay time.Duration, noticed, now int64) time.Duration {
	passed := time.Duration(now-noticed) * time.Millisecond
	if passed < 0 {
		passed = 0
	}
	if passed >= delay {
		return 0
	}
	return delay - passed
}

// writeMarker sets the marker's data, creating it (persistent, with the
// lock's ACL) when it does not exist and version is -1.
func writeMarker(ctx context.Context, q *contend.Queue, marker, data string, version int32) error {
	_, err := q.Sess.Set(ctx, marker, []byte(data), version)
	if errors.Is(err, zk.ErrNoNode) && version == -1 {
		_, err = q.Sess.Create(ctx, marker, []byte(data), 0, q.ACL)
		if errors.Is(err, zk.ErrNodeExists) {
			_, err = q.Sess.Set(ctx, marker, []byte(data), -1)
		}
	}
	return err
}

func sleep(ctx context.Context, sess core.Client, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-sess.Done():
		return sess.Err()
	}
}

// releaseOps returns the op that removes the marker in one Multi with the
// delete of e's node at a clean Release, so the server may reap the lock
// node again. If the marker is gone already, the hold deletes e's node alone.
func releaseOps(q *contend.Queue) []any {
	return []any{&zk.DeleteRequest{Path: q.Dir + "/" + DelayNode, Version: -1}}
}
