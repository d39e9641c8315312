package membership

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Membership is our presence in a group, a recipes.Held. It ends when we
// Release it, when the session is over, or when the node is deleted by
// someone else. On a Client it outlives sessions and deletions: it ends
// only when we Release it or the Client is closed (see the package doc).
type Membership struct {
	g    *Group
	id   string
	data []byte // on a Client: what the node is created with again

	done  chan struct{}
	stop  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	err   error
	sess  *recipes.Session // the session our node was last created on
	full  string           // our node's path on sess
	czxid int64            // our node's czxid: the Token

	ctxOut    context.Context // cancelled by end, with its error as cause
	cancelOut context.CancelCauseFunc

	// On a Client only: the keeper goroutine, which creates our node again
	// on each new session, runs under ctx (cancelled by Release) and closes
	// kept when it ends.
	ctx    context.Context
	cancel context.CancelFunc
	kept   chan struct{}
}

func (g *Group) newMembership(sess *recipes.Session, id, full string, czxid int64) *Membership {
	m := &Membership{g: g, id: id, sess: sess, full: full, czxid: czxid, done: make(chan struct{}), stop: make(chan struct{})}
	m.ctxOut, m.cancelOut = context.WithCancelCause(context.Background())
	return m
}

// watchMember watches our node on a Session source until it goes.
func (g *Group) watchMember(ctx context.Context, id, full string) (*Membership, error) {
	sess := g.binder.Fixed().Sess
	got, err := core.Of(sess).GetW(ctx, full)
	var czxid int64
	if err == nil {
		czxid = got.Stat.Czxid
	}
	watch := got.Watch
	m := g.newMembership(sess, id, full, czxid)
	if err != nil {
		m.Release(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("membership: join %s as %q: %w", g.path, id, err)
	}
	if !core.Of(sess).Go(func() {
		if err := m.monitorOn(sess, full, watch); err != nil {
			m.end(err)
		}
	}) {
		m.end(fmt.Errorf("%w: %w", ErrGone, recipes.ErrClosed))
	}
	return m, nil
}

// joinLasting joins on a source that outlives its sessions: on its live
// session now, then on every new one, in the keeper goroutine.
func (g *Group) joinLasting(ctx context.Context, id string, data []byte) (*Membership, error) {
	data = append([]byte(nil), data...)
	for {
		sess, err := g.src.Live(ctx)
		if err != nil {
			return nil, fmt.Errorf("membership: join %s as %q: %w", g.path, id, err)
		}
		full, watch, czxid, err := g.joinOn(ctx, sess, id, data)
		if err != nil {
			if g.binder.Again(ctx, sess) {
				continue // the session ended: join on the next one
			}
			return nil, err
		}
		m := g.newMembership(sess, id, full, czxid)
		m.data = data
		m.ctx, m.cancel = context.WithCancel(context.Background())
		m.kept = make(chan struct{})
		go m.keep(sess, full, watch)
		return m, nil
	}
}

// joinOn creates our node on sess and watches it. On error no node of ours
// is left on sess: one created before ctx ended is deleted.
func (g *Group) joinOn(ctx context.Context, sess *recipes.Session, id string, data []byte) (string, <-chan zk.Event, int64, error) {
	dir := sess.Path(g.path)
	full := dir + "/" + id
	for {
		if err := g.create(ctx, sess, dir, id, data, true); err != nil {
			return "", nil, 0, err
		}
		var got core.Watched[[]byte]
		err := core.Of(sess).Retry(ctx, func(ctx context.Context) error {
			var err error
			got, err = core.Of(sess).GetW(ctx, full)
			return err
		})
		watch := got.Watch
		var czxid int64
		if err == nil {
			czxid = got.Stat.Czxid
		}
		if errors.Is(err, zk.ErrNoNode) && ctx.Err() == nil {
			continue // deleted at once by someone else: create it again
		}
		if err == nil && ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		if err != nil {
			g.drop(ctx, sess, full)
			return "", nil, 0, fmt.Errorf("membership: join %s as %q: %w", g.path, id, err)
		}
		return full, watch, czxid, nil
	}
}

// drop deletes our node at full on sess: now, bounded by the session
// timeout, else in the background until that succeeds or the session ends.
func (g *Group) drop(ctx context.Context, sess *recipes.Session, full string) {
	del := func(ctx context.Context) error {
		err := core.Of(sess).Delete(ctx, full, -1)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sess.Timeout())
	defer cancel()
	if err := core.Of(sess).Retry(dctx, del); err != nil && sess.Err() == nil {
		core.Of(sess).Cleanup("leave "+full, del)
	}
}

// ID returns the member id.
func (m *Membership) ID() string { return m.id }

// Done is closed when the membership is over.
func (m *Membership) Done() <-chan struct{} { return m.done }

// Token returns the czxid of our member node: a fencing token for what the
// member does as id. A later node of the same id (on a Client, our own
// node created again on a new session) has a larger one.
func (m *Membership) Token() recipes.Token {
	m.mu.Lock()
	defer m.mu.Unlock()
	return recipes.Token(m.czxid)
}

// Context returns a context that is cancelled when the membership ends,
// with Err as its cause. On a Client it stays live while the membership
// joins again on a new session (the node is absent meanwhile): a
// membership says "this member is around", not "exclusively held".
func (m *Membership) Context() context.Context { return m.ctxOut }

// Err is nil while we are a member; then ErrReleased, or an error wrapping
// ErrGone and the cause (the session's end, or the node's deletion; on a
// Client, the Client's closing or what stopped us from joining again).
func (m *Membership) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

func (m *Membership) end(err error) {
	m.once.Do(func() {
		m.mu.Lock()
		m.err = err
		m.mu.Unlock()
		m.cancelOut(err)
		close(m.done)
	})
}

// node returns the session our node was last created on, and its path.
func (m *Membership) node() (*recipes.Session, string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sess, m.full
}

// monitorOn watches our node on sess, re-arming its watch after data
// changes and reconnects, until the node goes or the session ends (it
// returns why, wrapping ErrGone) or Release stops it (it returns nil).
func (m *Membership) monitorOn(sess *recipes.Session, full string, watch <-chan zk.Event) error {
	for {
		_, changed := core.Of(sess).Changed()
		select {
		case ev := <-watch:
			if ev.Type == zk.EventNodeDeleted {
				return fmt.Errorf("%w: node %s deleted", ErrGone, full)
			}
		case <-changed:
		case <-sess.Done():
			return fmt.Errorf("%w: %w", ErrGone, sess.Err())
		case <-m.stop:
			return nil
		}
		if sess.State() == recipes.StateSuspended {
			watch = nil // wait for the reconnect, then look again
			continue
		}
		w, err := core.WatchOf(core.Of(sess).GetW(sess.Context(), full))
		switch {
		case errors.Is(err, zk.ErrNoNode):
			return fmt.Errorf("%w: node %s deleted", ErrGone, full)
		case err == nil:
			watch = w
		default:
			watch = nil // transient: the next state change retries
		}
	}
}

// keep is the keeper of a membership on a source that outlives its
// sessions: it watches our node and, when it goes (the session ended, or
// someone deleted it), creates it again on the source's live session,
// until Release or the source's end.
func (m *Membership) keep(sess *recipes.Session, full string, watch <-chan zk.Event) {
	defer close(m.kept)
	for {
		cause := m.monitorOn(sess, full, watch)
		if cause == nil {
			return // Release
		}
		if !m.g.lasting {
			m.end(cause) // a source that ends with its session
			return
		}
		if errors.Is(cause, recipes.ErrClosed) {
			// Closed under us: normally the Client closing.
			sess.Logger().Debug("membership: session closed; joining again", "group", m.g.path, "id", m.id)
		} else {
			sess.Logger().Warn("membership: lost; joining again", "group", m.g.path, "id", m.id, "cause", cause)
		}
		var ok bool
		if sess, full, watch, ok = m.rejoin(); !ok {
			return
		}
	}
}

// rejoin creates our node again on the source's live session, retrying
// with backoff; ok is false when the membership ended or Release began.
func (m *Membership) rejoin() (sess *recipes.Session, full string, watch <-chan zk.Event, ok bool) {
	g := m.g
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 100*time.Millisecond, 5*time.Second, 0
	for {
		s, err := g.src.Live(m.ctx)
		if err != nil {
			if m.ctx.Err() == nil {
				m.end(fmt.Errorf("%w: %w", ErrGone, err))
			}
			return nil, "", nil, false
		}
		full, watch, czxid, err := g.joinOn(m.ctx, s, m.id, m.data)
		switch {
		case err == nil:
			m.mu.Lock()
			m.sess, m.full, m.czxid = s, full, czxid
			m.mu.Unlock()
			s.Logger().Info("membership: joined again", "group", g.path, "id", m.id, "session", fmt.Sprintf("0x%x", s.ID()))
			return s, full, watch, true
		case m.ctx.Err() != nil:
			return nil, "", nil, false
		case s.Err() != nil:
			continue // that session ended too: the next one
		case recipes.Permanent(err):
			s.Logger().Warn("membership: cannot join again; giving up", "group", g.path, "id", m.id, "err", err)
			m.end(fmt.Errorf("%w: %w", ErrGone, err))
			return nil, "", nil, false
		}
		wait := b.NextBackOff()
		s.Logger().Warn("membership: join failed; retrying", "group", g.path, "id", m.id, "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-m.ctx.Done():
			t.Stop()
			return nil, "", nil, false
		}
	}
}

// Release leaves the group (deletes our node), retrying across
// disconnects until ctx is done. It is idempotent. On a Client it first
// stops the membership from joining again (waiting, within ctx, for a
// join under way to finish).
func (m *Membership) Release(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("membership: release %s: nil context", m.g.path)
	}
	m.mu.Lock()
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.mu.Unlock()
	if m.kept != nil {
		m.cancel()
		select {
		case <-m.kept:
		case <-ctx.Done():
			return fmt.Errorf("membership: release %s: %w", m.g.path, context.Cause(ctx))
		}
	}
	sess, full := m.node()
	if sess.Err() != nil {
		m.end(ErrReleased)
		return nil
	}
	err := core.Of(sess).Retry(ctx, func(ctx context.Context) error {
		err := core.Of(sess).Delete(ctx, full, -1)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
	if err != nil && sess.Err() == nil {
		return fmt.Errorf("membership: release %s: %w", m.g.path, err)
	}
	m.end(ErrReleased)
	return nil
}

var _ recipes.Fenced = (*Membership)(nil)
