package election

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// binding is the election on one session: its queue, and whether the
// server that session talks to has been synced with the leader.
type binding struct {
	sess *recipes.Session
	q    *contend.Queue
	gate chan struct{} // one slot, held while syncing
	// synced is set once a sync went through on sess (at once for a
	// *Session source: it never moves to another session).
	synced atomic.Bool
}

func newBinding(sess *recipes.Session, q *contend.Queue, synced bool) *binding {
	b := &binding{sess: sess, q: q, gate: make(chan struct{}, 1)}
	b.synced.Store(synced)
	return b
}

// ready syncs the server of a new session with the ensemble leader once,
// before the election is read on it: after an expiry go-zookeeper forgets
// the last zxid it saw, so without the sync a new session could read state
// older than what was read on the one before (a deposed leader, say). It
// makes one attempt; callers retry transient errors.
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
		return c.Sync(b.q.Dir)
	})
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	b.synced.Store(true)
	return nil
}

// bind returns the election on a live session of its source: the Session
// it was made with (as it is, live or not), or the source's live session,
// which a Client waits for.
func (e *Election) bind(ctx context.Context) (*binding, error) {
	if e.fixed != nil {
		return e.fixed, nil
	}
	sess, err := live(ctx, e.src)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur == nil || e.cur.sess != sess {
		q, err := contend.NewQueue("election", sess, e.path, kinds, e.opts.acl)
		if err != nil {
			return nil, err
		}
		e.cur = newBinding(sess, q, false)
	}
	return e.cur, nil
}

// again reports whether an operation that failed on sess goes on with the
// next session: the source outlives its sessions, sess is over and ctx is
// not.
func (e *Election) again(ctx context.Context, sess *recipes.Session) bool {
	return e.lasting && ctx.Err() == nil && sess.Err() != nil
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
