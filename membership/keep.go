package membership

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Keep keeps id in the group at path across session losses, until ctx is
// done: it connects a session with connect, joins, and when the session is
// over (expiry, partition past the local deadline) connects a new one and
// joins again. Joining again waits for the old session's node to go (the
// server deletes it when it expires the old session). On ctx's end it
// leaves the group, closes its session and returns ctx's cause. joined, if
// not nil, is called after every successful join.
//
// Deprecated: join on a recipes.Client instead, which stays in the group
// across sessions: New(client, path).Join(ctx, id, data), and Leave when
// done. Keep is that Join on a source that opens each session with
// connect.
func Keep(ctx context.Context, connect func(context.Context) (*recipes.Session, error),
	path, id string, data []byte, joined func(*recipes.Session, *Membership)) error {
	if ctx == nil || connect == nil {
		return fmt.Errorf("membership: keep %s: nil context or connect function", path)
	}
	if err := validID(id); err != nil {
		return err
	}
	src := &connector{connect: connect}
	defer src.close()
	g := New(src, path)
	g.onJoin = joined
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 100*time.Millisecond, 5*time.Second, 0
	for {
		m, err := g.Join(ctx, id, data)
		if err == nil {
			select {
			case <-ctx.Done():
				sess, _ := m.node()
				lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sess.Timeout())
				m.Leave(lctx)
				cancel()
				return context.Cause(ctx)
			case <-m.Done(): // the server refused to take us back: try afresh
				err = m.Err()
			}
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if errors.Is(err, recipes.ErrInvalidPath) {
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

// connector is Keep's Source: it opens a Session with connect whenever the
// last one is over, with backoff between failed attempts.
type connector struct {
	connect func(context.Context) (*recipes.Session, error)

	mu     sync.Mutex // held while connecting: one session at a time
	cur    *recipes.Session
	closed bool
}

var errKeepEnded = errors.New("membership: keep ended")

// Lasting is true: members follow the connector to each new session.
func (c *connector) Lasting() bool { return true }

// Live returns the current session, or connects a new one when it is over.
func (c *connector) Live(ctx context.Context) (*recipes.Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b *backoff.ExponentialBackOff
	for {
		if c.closed {
			return nil, errKeepEnded
		}
		if c.cur != nil {
			if c.cur.Err() == nil {
				return c.cur, nil
			}
			c.cur.Close()
			c.cur = nil
		}
		s, err := c.connect(ctx)
		if err == nil {
			c.cur = s
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if b == nil {
			b = backoff.NewExponentialBackOff()
			b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 100*time.Millisecond, 5*time.Second, 0
		}
		t := time.NewTimer(b.NextBackOff())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		}
	}
}

// close closes the current session; Live fails from then on.
func (c *connector) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.cur != nil {
		c.cur.Close()
		c.cur = nil
	}
}
