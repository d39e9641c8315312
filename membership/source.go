package membership

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// binding is the group on one session: its full path there, and whether
// the server that session talks to has been synced with the leader.
type binding struct {
	sess *recipes.Session
	full string        // the group's path, chroot applied
	gate chan struct{} // one slot, held while syncing
	// synced is set once a sync went through on sess (at once for a
	// *Session source: it never moves to another session).
	synced atomic.Bool
}

func newBinding(sess *recipes.Session, full string, synced bool) *binding {
	b := &binding{sess: sess, full: full, gate: make(chan struct{}, 1)}
	b.synced.Store(synced)
	return b
}

// ready syncs the server of a new session with the ensemble leader once,
// before the group is read on it: after an expiry go-zookeeper forgets the
// last zxid it saw, so without the sync a new session could read a state
// older than one read on the session before. It makes one attempt; callers
// retry transient errors.
func (b *binding) ready(ctx context.Context) error {
	if b.synced.Load() {
		return nil
	}
	select {
	case b.gate <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-b.sess.Done():
		return b.sess.Err()
	}
	defer func() { <-b.gate }()
	if b.synced.Load() {
		return nil
	}
	_, err := recipes.Call(ctx, b.sess, func(c *zk.Conn) (string, error) {
		return c.Sync(b.full)
	})
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	b.synced.Store(true)
	return nil
}

// bind returns the group on a live session of its source: the Session it
// was made with (as it is, live or not), or the source's live session,
// which a Client waits for.
func (g *Group) bind(ctx context.Context) (*binding, error) {
	if g.fixed != nil {
		return g.fixed, nil
	}
	sess, err := live(ctx, g.src)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur == nil || g.cur.sess != sess {
		g.cur = newBinding(sess, sess.Path(g.path), false)
	}
	return g.cur, nil
}

// again reports whether an operation that failed on sess goes on with the
// next session: the source outlives its sessions, sess is over and ctx is
// not.
func (g *Group) again(ctx context.Context, sess *recipes.Session) bool {
	return g.lasting && ctx.Err() == nil && sess.Err() != nil
}

// live returns a live session of src (src.Live). A Client's Live may not
// return when the Client is closed while it has no session (it waits for a
// change that never comes), so with a Client we also wait for the end of
// its change feed, which Close ends.
func live(ctx context.Context, src recipes.Source) (*recipes.Session, error) {
	c, ok := src.(*recipes.Client)
	if !ok {
		return src.Live(ctx)
	}
	if s := c.Current(); s != nil && s.Err() == nil {
		return s, nil
	}
	wctx, cancel := context.WithCancelCause(ctx)
	changes := c.Subscribe(wctx)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for range changes {
		}
		cancel(recipes.ErrClientClosed) // a no-op unless the Client closed
	}()
	s, err := c.Live(wctx)
	cancel(context.Canceled)
	<-fed
	if err != nil && ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	return s, err
}
