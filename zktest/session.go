package zktest

import (
	"context"
	"testing"
	"time"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// DefaultSessionTimeout is the session timeout Session and Proxy.Session ask
// for unless the caller's options say otherwise.
const DefaultSessionTimeout = 2 * time.Second

// Session connects a *recipes.Session to the cluster with a
// DefaultSessionTimeout session timeout and, for servers zktest started,
// recipes.WithServerTickTime of their TickTime (opts come after them and can
// override them). The test fails if no session is granted within 20 s. The session is
// closed by t.Cleanup.
func (c *Cluster) Session(t testing.TB, opts ...recipes.Option) *recipes.Session {
	t.Helper()
	return connectSession(t, c.Addrs(), c.tick(), c.withTLS(opts))
}

// withTLS puts the cluster's TLS configuration first in opts when it has
// one.
func (c *Cluster) withTLS(opts []recipes.Option) []recipes.Option {
	if c.ca == nil {
		return opts
	}
	return append([]recipes.Option{recipes.WithTLS(c.TLSConfig())}, opts...)
}

// ServerSession connects a *recipes.Session to server i alone (its address
// in Addrs), so that the session stays on that server: it cannot move to
// another one when that server stops serving. Otherwise it is Session.
func (c *Cluster) ServerSession(t testing.TB, i int, opts ...recipes.Option) *recipes.Session {
	t.Helper()
	if i < 0 || i >= len(c.addrs) {
		t.Fatalf("zktest: server index %d out of range [0,%d)", i, len(c.addrs))
	}
	return connectSession(t, c.Addrs()[i:i+1], c.tick(), c.withTLS(opts))
}

// Session connects a *recipes.Session through the proxy; see Cluster.Session.
func (p *Proxy) Session(t testing.TB, opts ...recipes.Option) *recipes.Session {
	t.Helper()
	if p.withTLS != nil {
		opts = p.withTLS(opts)
	}
	return connectSession(t, p.Addrs(), p.tick, opts)
}

// tick is the servers' tickTime when zktest started them, else 0.
func (c *Cluster) tick() time.Duration {
	if c.external {
		return 0
	}
	return c.cfg.TickTime
}

func connectSession(t testing.TB, addrs []string, tick time.Duration, opts []recipes.Option) *recipes.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	all := []recipes.Option{recipes.WithSessionTimeout(DefaultSessionTimeout)}
	if tick > 0 {
		all = append(all, recipes.WithServerTickTime(tick))
	}
	all = append(all, opts...)
	sess, err := recipes.Connect(ctx, addrs, all...)
	if err != nil {
		t.Fatalf("zktest: recipes.Connect(%v): %v", addrs, err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	return sess
}
