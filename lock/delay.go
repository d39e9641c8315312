package lock

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Lock-delay bookkeeping lives in the lock node's data: "held:<node>" while
// a holder that uses WithLockDelay holds, "released:<node>" after its clean
// Release (written in one Multi with the delete of its node).
const (
	heldPrefix     = "held:"
	releasedPrefix = "released:"
)

// delayAfterAbandon runs once e heads the queue: if the previous holder
// recorded itself and its node is gone without a clean release, it waits
// the lock-delay (a Try form returns ErrBlocked instead), then records e as
// the holder.
func (b *queue) delayAfterAbandon(ctx context.Context, e *contend.Entry, try bool) error {
	type got struct {
		data []byte
		ok   bool
	}
	var prev string
	err := recipes.Retry(ctx, b.sess, func(ctx context.Context) error {
		g, err := recipes.Call(ctx, b.sess, func(c *zk.Conn) (got, error) {
			d, _, err := c.Get(b.q.Dir)
			return got{d, err == nil}, err
		})
		if err != nil {
			return err
		}
		prev = ""
		if name, ok := strings.CutPrefix(string(g.data), heldPrefix); ok && name != e.Node.Name {
			prev = name
		}
		return nil
	})
	if err != nil {
		return err
	}
	if prev != "" {
		gone, err := recipes.Call(ctx, b.sess, func(c *zk.Conn) (bool, error) {
			ok, _, err := c.Exists(b.q.Dir + "/" + prev)
			return !ok, err
		})
		if err != nil {
			return err
		}
		if gone && try {
			return contend.ErrBlocked // the lock-delay is still running
		}
		if gone {
			b.sess.Logger().Info("lock-delay: previous holder vanished without releasing",
				"lock", b.path, "previous", prev, "delay", b.opts.lockDelay)
			t := time.NewTimer(b.opts.lockDelay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-b.sess.Done():
				return b.sess.Err()
			}
		}
	}
	_, err = recipes.Call(ctx, b.sess, func(c *zk.Conn) (*zk.Stat, error) {
		return c.Set(b.q.Dir, []byte(heldPrefix+e.Node.Name), -1)
	})
	if errors.Is(err, zk.ErrNoNode) {
		return contend.ErrNodeGone // the parent cannot vanish while we are in it
	}
	return err
}

// markReleased returns the op recording a clean release of e.
func (b *queue) markReleased(e *contend.Entry) []any {
	return []any{&zk.SetDataRequest{Path: b.q.Dir, Data: []byte(releasedPrefix + e.Node.Name), Version: -1}}
}
