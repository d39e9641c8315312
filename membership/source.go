package membership

import (
	"context"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// binding is the group on one session: its full path there, and whether
// the server that session talks to has been synced with the leader.
type binding struct {
	sess *recipes.Session
	full string // the group's path, chroot applied
	// synced: no sync needed (a *Session source: it never moves to
	// another session); else Session.SyncOnce before the first read.
	synced bool
}

func newBinding(sess *recipes.Session, full string, synced bool) *binding {
	return &binding{sess: sess, full: full, synced: synced}
}

// ready syncs the server of a new session with the ensemble leader once,
// before the group is read on it: after an expiry go-zookeeper forgets the
// last zxid it saw, so without the sync a new session could read a state
// older than one read on the session before. It makes one attempt; callers
// retry transient errors.
func (b *binding) ready(ctx context.Context) error {
	if b.synced {
		return nil
	}
	return b.sess.SyncOnce(ctx, b.full)
}

// bind returns the group on a live session of its source: the Session it
// was made with (as it is, live or not), or the source's live session,
// which a Client waits for.
func (g *Group) bind(ctx context.Context) (*binding, error) {
	if g.fixed != nil {
		return g.fixed, nil
	}
	sess, err := g.src.Live(ctx)
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
