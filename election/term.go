package election

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Token is a fencing token (see recipes.Token).
type Token = recipes.Token

// Term is one period of leadership. Its methods are safe for concurrent use.
type Term struct {
	sess *recipes.Session // the session the term was won on; it ends with it
	h    *contend.Hold
	path string
}

// Token returns the term's fencing token: the czxid of our candidate node.
// Later terms of the same election have larger tokens.
func (t *Term) Token() Token { return Token(t.h.Entry().Stat.Czxid) }

// Path returns our candidate node's path (relative to the chroot).
func (t *Term) Path() string { return t.path }

// Context is cancelled, with the reason as cause, the moment leadership is
// in doubt (see the package doc) or Release begins. Run the leader's work
// under it.
func (t *Term) Context() context.Context { return t.h.Context() }

// Done is closed when the term is over.
func (t *Term) Done() <-chan struct{} { return t.h.Done() }

// Err is nil while the term lasts; then ErrReleased, or an error wrapping
// ErrLost and the cause.
func (t *Term) Err() error { return t.h.Err() }

// Release ends the term by deleting our node, so the next candidate leads at
// once. It is idempotent and safe after a loss; if the connection is down it
// retries until ctx is done, then goes on in the background until the node
// is gone or the session ends.
func (t *Term) Release(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("election: release %s: nil context", t.path)
	}
	return t.h.Release(ctx)
}

// Proclaim changes the value this leader advertises. It succeeds only while
// the term lasts: once the term is over, or if our node is gone, it returns
// an error wrapping ErrNotLeader.
func (t *Term) Proclaim(ctx context.Context, value []byte) error {
	if ctx == nil {
		return fmt.Errorf("election: proclaim %s: nil context", t.path)
	}
	if err := t.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	full := t.h.Entry().Path
	err := core.Of(t.sess).Retry(ctx, func(ctx context.Context) error {
		_, err := core.Of(t.sess).Set(ctx, full, value, -1)
		return err
	})
	switch {
	case errors.Is(err, zk.ErrNoNode):
		return fmt.Errorf("%w: our node %s is gone", ErrNotLeader, t.path)
	case err != nil:
		return fmt.Errorf("election: proclaim %s: %w", t.path, err)
	}
	if err := t.Err(); err != nil { // lost while the write was in flight
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return nil
}

var _ recipes.Fenced = (*Term)(nil)
