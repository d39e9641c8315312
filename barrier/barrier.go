package barrier

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Barrier is a gate: while its node exists, Wait blocks. Set creates the
// node, Remove deletes it and releases every waiter.
//
// Built on a recipes.Client, each call uses the Client's live session
// (waiting for one while it reconnects), and Wait carries on with the next
// session when its session is lost: the gate is a persistent node, which
// outlives sessions.
type Barrier struct {
	src  recipes.Source
	path string
	opts options
	err  error
}

// NewBarrier returns a Barrier at path (relative to the chroot) on src: a
// Session, or a Client. Bad arguments are reported by its methods.
func NewBarrier(src recipes.Source, path string, opts ...Option) *Barrier {
	b := &Barrier{src: src, path: path}
	b.err = core.Setup("barrier", &b.opts, opts, recipes.CheckSource(src), path)
	return b
}

func (b *Barrier) check(ctx context.Context, op string) error {
	return core.Check(ctx, b.err, "barrier", op, b.path)
}

// session returns a live session of the source and the barrier's full path
// on it; on a Client, the session's server is synced with the leader first.
func (b *Barrier) session(ctx context.Context) (*recipes.Session, string, error) {
	sess, err := b.src.Live(ctx)
	if err != nil {
		return nil, "", err
	}
	full := sess.Path(b.path)
	if b.src.Lasting() {
		if err := core.Of(sess).Retry(ctx, func(ctx context.Context) error { return sess.SyncOnce(ctx, full) }); err != nil {
			return nil, "", err
		}
	}
	return sess, full, nil
}

// Set closes the gate: it creates the barrier node (and its parents) if it
// does not exist. It is idempotent.
func (b *Barrier) Set(ctx context.Context) error {
	if err := b.check(ctx, "set"); err != nil {
		return err
	}
	sess, full, err := b.session(ctx)
	if err == nil {
		err = core.Of(sess).Retry(ctx, func(ctx context.Context) error {
			err := core.Of(sess).CreatePath(ctx, full, nil, zk.FlagPersistent, zk.FlagPersistent, core.ACLOr(b.opts.acl, core.Of(sess)), nil)
			if errors.Is(err, zk.ErrNodeExists) {
				return nil
			}
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("barrier: set %s: %w", b.path, err)
	}
	return nil
}

// Remove opens the gate: it deletes the barrier node, which releases every
// waiter. It is idempotent.
func (b *Barrier) Remove(ctx context.Context) error {
	if err := b.check(ctx, "remove"); err != nil {
		return err
	}
	sess, full, err := b.session(ctx)
	if err == nil {
		err = core.Of(sess).Retry(ctx, func(ctx context.Context) error {
			err := core.Of(sess).Delete(ctx, full, -1)
			if errors.Is(err, zk.ErrNoNode) {
				return nil
			}
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("barrier: remove %s: %w", b.path, err)
	}
	return nil
}

// Wait blocks while the barrier node exists: it returns nil once the node
// is gone (at once if it does not exist), or ctx's cause, or the session's
// end (on a Client: the Client's close; a lost session is replaced). Every
// wake-up re-reads the node: a wake-up alone proves nothing.
func (b *Barrier) Wait(ctx context.Context) error {
	if err := b.check(ctx, "wait"); err != nil {
		return err
	}
	for {
		sess, full, err := b.session(ctx)
		if err != nil {
			return fmt.Errorf("barrier: wait %s: %w", b.path, err)
		}
		gone, err := waitGone(ctx, sess, full)
		switch {
		case gone:
			return nil
		case err == nil:
		case sess.Err() != nil && b.src.Lasting() && ctx.Err() == nil:
			// The session ended while we waited: go on with the next one.
		default:
			return fmt.Errorf("barrier: wait %s: %w", b.path, err)
		}
	}
}

// waitGone waits on sess until the node at full is gone (true), or ctx or
// the session ends.
func waitGone(ctx context.Context, sess *recipes.Session, full string) (bool, error) {
	for {
		_, changed := core.Of(sess).Changed()
		var watch <-chan zk.Event
		err := core.Of(sess).Retry(ctx, func(ctx context.Context) error {
			var err error
			watch, err = core.WatchOf(core.Of(sess).GetW(ctx, full)) // GetW: a missing node leaves no watch behind
			return err
		})
		switch {
		case errors.Is(err, zk.ErrNoNode):
			return true, nil
		case err != nil:
			return false, err
		}
		select {
		case <-watch:
		case <-changed:
		case <-ctx.Done():
			return false, context.Cause(ctx)
		case <-sess.Done():
			return false, sess.Err()
		}
	}
}
