package election

import (
	"context"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// binding is the election on one session: its queue, and whether the
// server that session talks to has been synced with the leader.
type binding struct {
	sess *recipes.Session
	q    *contend.Queue
	// synced: no sync needed (a *Session source: it never moves to
	// another session); else Session.SyncOnce before the first read.
	synced bool
}

func newBinding(sess *recipes.Session, q *contend.Queue, synced bool) *binding {
	return &binding{sess: sess, q: q, synced: synced}
}

// ready syncs the server of a new session with the ensemble leader once,
// before the election is read on it: after an expiry go-zookeeper forgets
// the last zxid it saw, so without the sync a new session could read state
// older than what was read on the one before (a deposed leader, say). It
// makes one attempt; callers retry transient errors.
func (b *binding) ready(ctx context.Context) error {
	if b.synced {
		return nil
	}
	return b.sess.SyncOnce(ctx, b.q.Dir)
}

// bind returns the election on a live session of its source: the Session
// it was made with (as it is, live or not), or the source's live session,
// which a Client waits for.
func (e *Election) bind(ctx context.Context) (*binding, error) {
	if e.fixed != nil {
		return e.fixed, nil
	}
	sess, err := e.src.Live(ctx)
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
