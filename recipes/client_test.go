package recipes_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

func newClient(t *testing.T, servers []string, opts ...recipes.Option) *recipes.Client {
	t.Helper()
	c, err := recipes.NewClient(servers, append([]recipes.Option{recipes.WithSessionTimeout(time.Second)}, opts...))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func nextChange(t *testing.T, ch <-chan recipes.SessionChange, what string) recipes.SessionChange {
	t.Helper()
	select {
	case ev, ok := <-ch:
		require.True(t, ok, "changes closed before %s", what)
		return ev
	case <-time.After(20 * time.Second):
		t.Fatalf("no session change: %s", what)
	}
	return recipes.SessionChange{}
}

// A session the server expires is replaced by a new one; subscribers see
// the loss (with its cause) and the new session, and Live returns it.
func TestClientReplacesExpiredSession(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	c := newClient(t, zkc.Addrs(), recipes.WithServerTickTime(200*time.Millisecond))
	ctx := ctxT(t, 30*time.Second)
	changes := c.Subscribe(ctx)
	s1, err := c.Live(ctx)
	require.NoError(t, err)
	first := nextChange(t, changes, "the first session")
	if first.New == 0 { // subscribed after the first grant: nothing to see yet
		t.Fatalf("first change %+v", first)
	}

	zkc.Expire(t, s1)
	lost := nextChange(t, changes, "the loss")
	require.Equal(t, s1.ID(), lost.Old)
	require.Zero(t, lost.New)
	// The server ended it: the client hears so on reconnecting, unless its
	// local deadline passes first (go-zookeeper may wait up to a second
	// before it reconnects to a lone server).
	require.True(t, errors.Is(lost.Cause, recipes.ErrExpired) || errors.Is(lost.Cause, recipes.ErrDeadline), "cause %v", lost.Cause)
	granted := nextChange(t, changes, "the new session")
	require.Equal(t, s1.ID(), granted.Old)
	require.NotZero(t, granted.New)
	require.NotEqual(t, s1.ID(), granted.New)
	s2, err := c.Live(ctx)
	require.NoError(t, err)
	require.Equal(t, granted.New, s2.ID())
	require.NoError(t, s2.Err())
	require.Error(t, s1.Err())
}

// With the ensemble down for several session timeouts the client retries
// with backoff, says why at WARN, and heals once a server is back.
func TestClientHealsAfterEnsembleDown(t *testing.T) {
	zkc := zktest.StartCluster(t, zktest.Config{})
	var logs syncBuffer
	c := newClient(t, zkc.Addrs(), logTo(&logs, slog.LevelWarn))
	ctx := ctxT(t, 60*time.Second)
	s1, err := c.Live(ctx)
	require.NoError(t, err)
	zkc.Kill(t, 0)
	select {
	case <-s1.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the session outlived its server")
	}
	// Several failed attempts over several session timeouts, each saying why.
	down := time.Now()
	deadline := down.Add(30 * time.Second)
	for strings.Count(logs.String(), "cannot open a ZooKeeper session; retrying") < 5 || time.Since(down) < 3*s1.Timeout() {
		require.True(t, time.Now().Before(deadline), "no retries logged:\n%s", logs.String())
		time.Sleep(20 * time.Millisecond) // polling the log, not ordering
	}
	require.Contains(t, logs.String(), "connection refused")
	require.Nil(t, c.Current(), "a session while every server is down")
	zkc.Restart(t, 0)
	s2, err := c.Live(ctx)
	require.NoError(t, err)
	require.NotEqual(t, s1.ID(), s2.ID())
}

// Close while the client is trying to connect (to a server that never
// answers) returns promptly; Live then says the client is closed.
func TestClientCloseDuringReconnect(t *testing.T) {
	c := newClient(t, []string{zktest.SilentServer(t)})
	live := make(chan error, 1)
	go func() {
		_, err := c.Live(context.Background())
		live <- err
	}()
	start := time.Now()
	require.NoError(t, c.Close())
	require.Less(t, time.Since(start), 2*time.Second, "Close waited for the connect attempt")
	select {
	case err := <-live:
		require.True(t, errors.Is(err, recipes.ErrClientClosed), "Live after Close: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Live did not return after Close")
	}
	_, err := c.Live(context.Background())
	require.ErrorIs(t, err, recipes.ErrClientClosed)
	require.NoError(t, c.Close(), "Close is idempotent")
}

// A Client can adopt a session opened beforehand (to report a first failure
// at once) and replaces it like its own when it is lost.
func TestClientAdoptsFirstSession(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	ctx := ctxT(t, 30*time.Second)
	opts := []recipes.Option{recipes.WithSessionTimeout(time.Second), recipes.WithServerTickTime(200 * time.Millisecond)}
	first, err := recipes.Connect(ctx, zkc.Addrs(), opts...)
	require.NoError(t, err)
	c, err := recipes.NewClient(zkc.Addrs(), opts, recipes.WithFirstSession(first))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	s, err := c.Live(ctx)
	require.NoError(t, err)
	require.Same(t, first, s)
	zkc.Expire(t, first)
	for {
		s, err = c.Live(ctx)
		require.NoError(t, err)
		if s != first {
			break
		}
		<-first.Done() // lost but not yet replaced: wait for the loss, then ask again
	}
	require.NotEqual(t, first.ID(), s.ID())
	require.NoError(t, c.Close())
	require.Error(t, first.Err(), "the adopted session is over")
}

// Live waiting while the Client has no session returns when the Client is
// closed.
func TestClientLiveReturnsOnClose(t *testing.T) {
	c := newClient(t, []string{zktest.ClosedPort(t)})
	live := make(chan error, 1)
	go func() {
		_, err := c.Live(context.Background())
		live <- err
	}()
	// Let Live start waiting: nothing to observe but its blocking, so give
	// it the time of several failed attempts (the client logs each).
	time.Sleep(300 * time.Millisecond) // a deliberate delay, not ordering: either order must pass
	require.NoError(t, c.Close())
	select {
	case err := <-live:
		require.ErrorIs(t, err, recipes.ErrClientClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Live still waiting after Close")
	}
}

// A session whose request is answered with "session expired" while its
// connection stays open is replaced, as one whose expiry event arrives is.
func TestClientReplacesSessionOnExpiredReply(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	p := zkc.Proxy(t)
	c := newClient(t, p.Addrs())
	ctx := ctxT(t, 30*time.Second)
	s1, err := c.Live(ctx)
	require.NoError(t, err)
	p.FailNextReply(zktest.ErrCodeSessionExpired, zktest.OpExists)
	_, _, err = s1.Conn().Exists("/")
	// The caller sees the answer, or the connection closing under it when
	// the session ends first.
	require.True(t, errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrConnectionClosed), "exists: %v", err)
	select {
	case <-s1.Done():
	case <-ctx.Done():
		t.Fatal("the session lived on after an expired reply")
	}
	require.ErrorIs(t, s1.Err(), recipes.ErrExpired)
	s2, err := c.Live(ctx)
	require.NoError(t, err)
	require.NotEqual(t, s1.ID(), s2.ID())
	_, _, err = s2.Conn().Exists("/")
	require.NoError(t, err)
}
