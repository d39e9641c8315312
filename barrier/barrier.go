package barrier

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Barrier is a gate: while its node exists, Wait blocks. Set creates the
// node, Remove deletes it and releases every waiter.
type Barrier struct {
	sess *recipes.Session
	path string
	full string
	err  error
}

// New returns a Barrier at path (relative to the chroot). Bad arguments are
// reported by its methods.
func New(sess *recipes.Session, path string) *Barrier {
	b := &Barrier{sess: sess, path: path}
	switch {
	case sess == nil:
		b.err = fmt.Errorf("barrier: %w", recipes.ErrNilSession)
	default:
		if err := recipes.ValidatePath(path); err != nil {
			b.err = fmt.Errorf("barrier: %w", err)
		} else {
			b.full = sess.Path(path)
		}
	}
	return b
}

func (b *Barrier) check(ctx context.Context, op string) error {
	if b.err != nil {
		return b.err
	}
	if ctx == nil {
		return fmt.Errorf("barrier: %s %s: nil context", op, b.path)
	}
	return nil
}

// Set closes the gate: it creates the barrier node (and its parents) if it
// does not exist. It is idempotent.
func (b *Barrier) Set(ctx context.Context) error {
	if err := b.check(ctx, "set"); err != nil {
		return err
	}
	err := recipes.Retry(ctx, b.sess, func(ctx context.Context) error {
		return createPath(ctx, b.sess, b.full, zk.FlagPersistent)
	})
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
	err := recipes.Retry(ctx, b.sess, func(ctx context.Context) error {
		_, err := recipes.Call(ctx, b.sess, func(c *zk.Conn) (struct{}, error) {
			return struct{}{}, c.Delete(b.full, -1)
		})
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("barrier: remove %s: %w", b.path, err)
	}
	return nil
}

// Wait blocks while the barrier node exists: it returns nil once the node
// is gone (at once if it does not exist), or ctx's cause, or the session's
// end. Every wake-up re-reads the node: a wake-up alone proves nothing.
func (b *Barrier) Wait(ctx context.Context) error {
	if err := b.check(ctx, "wait"); err != nil {
		return err
	}
	for {
		_, changed := b.sess.Changed()
		var watch <-chan zk.Event
		err := recipes.Retry(ctx, b.sess, func(ctx context.Context) error {
			var err error
			watch, err = recipes.Call(ctx, b.sess, func(c *zk.Conn) (<-chan zk.Event, error) {
				_, _, w, err := c.GetW(b.full) // GetW: a missing node leaves no watch behind
				return w, err
			})
			return err
		})
		switch {
		case errors.Is(err, zk.ErrNoNode):
			return nil
		case err != nil:
			return fmt.Errorf("barrier: wait %s: %w", b.path, err)
		}
		select {
		case <-watch:
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("barrier: wait %s: %w", b.path, context.Cause(ctx))
		case <-b.sess.Done():
			return fmt.Errorf("barrier: wait %s: %w", b.path, b.sess.Err())
		}
	}
}

// createPath creates full with flags, creating missing parents as
// persistent nodes; an existing node is fine.
func createPath(ctx context.Context, sess *recipes.Session, full string, flags int32) error {
	mk := func(p string, flags int32) error {
		_, err := recipes.Call(ctx, sess, func(c *zk.Conn) (string, error) {
			return c.Create(p, nil, flags, sess.ACL())
		})
		if errors.Is(err, zk.ErrNodeExists) {
			return nil
		}
		return err
	}
	err := mk(full, flags)
	if !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	for i := 1; i < len(full); i++ {
		if full[i] == '/' {
			if err := mk(full[:i], zk.FlagPersistent); err != nil {
				return err
			}
		}
	}
	return mk(full, flags)
}
