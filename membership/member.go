package membership

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Membership is our presence in a group. It ends when we Leave, when the
// session is over, or when the node is deleted by someone else.
type Membership struct {
	g    *Group
	id   string
	full string

	done chan struct{}
	stop chan struct{}
	once sync.Once
	mu   sync.Mutex
	err  error
}

func (g *Group) watchMember(ctx context.Context, id, full string) (*Membership, error) {
	m := &Membership{g: g, id: id, full: full, done: make(chan struct{}), stop: make(chan struct{})}
	watch, err := recipes.Call(ctx, g.sess, func(c *zk.Conn) (<-chan zk.Event, error) {
		_, _, w, err := c.GetW(full)
		return w, err
	})
	if err != nil {
		m.Leave(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("membership: join %s as %q: %w", g.path, id, err)
	}
	if !g.sess.Go(func() { m.monitor(watch) }) {
		m.end(fmt.Errorf("%w: %w", ErrGone, recipes.ErrClosed))
	}
	return m, nil
}

// ID returns the member id.
func (m *Membership) ID() string { return m.id }

// Done is closed when the membership is over.
func (m *Membership) Done() <-chan struct{} { return m.done }

// Err is nil while we are a member; then ErrLeft, or an error wrapping
// ErrGone and the cause (the session's end, or the node's deletion).
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
		close(m.done)
	})
}

// monitor ends the membership when our node goes or the session ends, and
// re-arms its watch after data changes and reconnects.
func (m *Membership) monitor(watch <-chan zk.Event) {
	sess := m.g.sess
	for {
		_, changed := sess.Changed()
		select {
		case ev := <-watch:
			if ev.Type == zk.EventNodeDeleted {
				m.end(fmt.Errorf("%w: node %s deleted", ErrGone, m.full))
				return
			}
		case <-changed:
		case <-sess.Done():
			m.end(fmt.Errorf("%w: %w", ErrGone, sess.Err()))
			return
		case <-m.stop:
			return
		}
		if sess.State() == recipes.StateSuspended {
			watch = nil // wait for the reconnect, then look again
			continue
		}
		w, err := recipes.Call(sess.Context(), sess, func(c *zk.Conn) (<-chan zk.Event, error) {
			_, _, w, err := c.GetW(m.full)
			return w, err
		})
		switch {
		case errors.Is(err, zk.ErrNoNode):
			m.end(fmt.Errorf("%w: node %s deleted", ErrGone, m.full))
			return
		case err == nil:
			watch = w
		default:
			watch = nil // transient: the next state change retries
		}
	}
}

// Leave removes us from the group (deletes our node), retrying across
// disconnects until ctx is done. It is idempotent.
func (m *Membership) Leave(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("membership: leave %s: nil context", m.g.path)
	}
	m.mu.Lock()
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.mu.Unlock()
	if m.g.sess.Err() != nil {
		m.end(ErrLeft)
		return nil
	}
	err := recipes.Retry(ctx, m.g.sess, func(ctx context.Context) error {
		_, err := recipes.Call(ctx, m.g.sess, func(c *zk.Conn) (struct{}, error) {
			return struct{}{}, c.Delete(m.full, -1)
		})
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
	if err != nil && m.g.sess.Err() == nil {
		return fmt.Errorf("membership: leave %s: %w", m.g.path, err)
	}
	m.end(ErrLeft)
	return nil
}

// Keep keeps id in the group at path across session losses, until ctx is
// done: it connects a session with connect, joins, and when the session is
// over (expiry, partition past the local deadline) connects a new one and
// joins again. Joining again waits for the old session's node to go (the
// server deletes it when it expires the old session). On ctx's end it
// leaves the group, closes its session and returns ctx's cause. joined, if
// not nil, is called after every successful join, from Keep's goroutine.
func Keep(ctx context.Context, connect func(context.Context) (*recipes.Session, error),
	path, id string, data []byte, joined func(*recipes.Session, *Membership)) error {
	if ctx == nil || connect == nil {
		return fmt.Errorf("membership: keep %s: nil context or connect function", path)
	}
	if err := validID(id); err != nil {
		return err
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 100*time.Millisecond, 5*time.Second, 0
	for {
		err := keepOnce(ctx, connect, path, id, data, joined, b)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if err != nil && errors.Is(err, recipes.ErrInvalidPath) {
			return err
		}
		t := time.NewTimer(b.NextBackOff())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
	}
}

func keepOnce(ctx context.Context, connect func(context.Context) (*recipes.Session, error),
	path, id string, data []byte, joined func(*recipes.Session, *Membership), b *backoff.ExponentialBackOff) error {
	sess, err := connect(ctx)
	if err != nil {
		return err
	}
	defer sess.Close()
	m, err := New(sess, path).Join(ctx, id, data)
	if err != nil {
		sess.Logger().Warn("membership: join failed; retrying with a new session", "group", path, "id", id, "err", err)
		return err
	}
	b.Reset()
	if joined != nil {
		joined(sess, m)
	}
	select {
	case <-m.Done():
		sess.Logger().Warn("membership: lost; joining again", "group", path, "id", id, "cause", m.Err())
		return m.Err()
	case <-ctx.Done():
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sess.Timeout())
		defer cancel()
		m.Leave(lctx)
		return nil
	}
}
