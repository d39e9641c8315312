package recipes_test

import (
	"context"
	"errors"
	"net"
	"path"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(wrapMain{m}, goleak.IgnoreCurrent())
}

// wrapMain stops the shared servers before goleak looks for leaks.
type wrapMain struct{ m *testing.M }

func (w wrapMain) Run() int {
	defer zktest.Cleanup()
	return w.m.Run()
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitState reads events until one with state want arrives.
func waitState(t *testing.T, ch <-chan recipes.StateEvent, want recipes.State, within time.Duration) recipes.StateEvent {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev, ok := <-ch:
			require.True(t, ok, "event channel closed while waiting for %v", want)
			if ev.State == want {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %v event within %v", want, within)
		}
	}
}

func TestConnectGrantsSession(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	s := zkc.Session(t)
	assert.NotZero(t, s.ID())
	assert.Equal(t, recipes.StateConnected, s.State())
	assert.Equal(t, 2*time.Second, s.Timeout())
	assert.NoError(t, s.Err())
	id, pw := s.Credentials()
	assert.Equal(t, s.ID(), id)
	assert.Len(t, pw, 16)
	select {
	case <-s.Done():
		t.Fatal("new session is done")
	default:
	}
	assert.WithinDuration(t, time.Now().Add(s.Timeout()), s.Deadline(), s.Timeout()/2)
}

func TestCloseEndsSessionOnServer(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	obs := zkc.Conn(t)
	s, err := recipes.Connect(ctxT(t, 10*time.Second), zkc.Addrs(), recipes.WithSessionTimeout(20*time.Second))
	require.NoError(t, err)
	l, err := lock.NewMutex(s, root).Acquire(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	path := l.Path()

	events := s.Subscribe(context.Background())
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	ev := waitState(t, events, recipes.StateLost, time.Second)
	require.ErrorIs(t, ev.Err, recipes.ErrClosed)
	_, ok := <-events
	require.False(t, ok, "subscription closed after lost")
	require.NoError(t, <-closed)
	require.NoError(t, s.Close(), "Close is idempotent")
	require.ErrorIs(t, s.Err(), recipes.ErrClosed)

	// The session timeout is 20 s: the node is gone at once only because
	// Close ended the session on the server.
	ok, _, err = obs.Exists(path)
	require.NoError(t, err)
	require.False(t, ok, "ephemeral node survived Close")
	<-l.Done()
	require.ErrorIs(t, l.Err(), lock.ErrLost)
	require.ErrorIs(t, l.Err(), recipes.ErrClosed)

	_, err = core.Call(context.Background(), core.Of(s), func(c *zk.Conn) (bool, error) {
		ok, _, err := c.Exists("/")
		return ok, err
	})
	require.ErrorIs(t, err, recipes.ErrClosed)
}

func TestConnectBadInput(t *testing.T) {
	ctx := ctxT(t, 5*time.Second)
	for name, tc := range map[string]struct {
		servers []string
		opts    []recipes.Option
	}{
		"no servers":      {nil, nil},
		"no port":         {[]string{"127.0.0.1"}, nil},
		"tiny timeout":    {[]string{"127.0.0.1:1"}, []recipes.Option{recipes.WithSessionTimeout(time.Millisecond)}},
		"bad chroot":      {[]string{"127.0.0.1:1"}, []recipes.Option{recipes.WithChroot("app")}},
		"nil logger":      {[]string{"127.0.0.1:1"}, []recipes.Option{recipes.WithLogger(nil)}},
		"empty ACL":       {[]string{"127.0.0.1:1"}, []recipes.Option{recipes.WithACL(nil)}},
		"bad policy":      {[]string{"127.0.0.1:1"}, []recipes.Option{recipes.WithLossPolicy(7)}},
		"negative margin": {[]string{"127.0.0.1:1"}, []recipes.Option{recipes.WithSafetyMargin(-time.Second)}},
		"no user":         {[]string{"127.0.0.1:1"}, []recipes.Option{recipes.WithDigestAuth("", "pw")}},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := recipes.Connect(ctx, tc.servers, tc.opts...)
			require.Error(t, err)
			require.Nil(t, s)
			t.Log(err)
		})
	}
}

func TestConnectHonoursContext(t *testing.T) {
	// Nothing listens on the port: Connect must give up with ctx.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	s, err := recipes.Connect(ctx, []string{addr})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Nil(t, s)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestPathValidation(t *testing.T) {
	for _, p := range []string{"", "a", "/", "/a/", "//a", "/a//b", "/a/./b", "/a/../b", "/a\x00b", "/a\x01", "/zookeeper", "/zookeeper/x", "/zookeeper/quota/a"} {
		err := recipes.ValidatePath(p)
		require.ErrorIs(t, err, recipes.ErrInvalidPath, "path %q", p)
	}
	require.ErrorContains(t, recipes.ValidatePath("/zookeeper/x"), "reserved")
	for _, p := range []string{"/a", "/a/b", "/jobs/42/lock", "/a.b/c-d_e", "/zookeeperx", "/apps/zookeeper"} {
		require.NoError(t, recipes.ValidatePath(p), "path %q", p)
	}
}

func TestSuspendAndReconnectEvents(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	p := zkc.Proxy(t)
	s := p.Session(t, recipes.WithSessionTimeout(4*time.Second))
	events := s.Subscribe(ctxT(t, 30*time.Second))
	id := s.ID()
	const rounds = 3
	for i := 0; i < rounds; i++ {
		p.Set(zktest.Reset)
		waitState(t, events, recipes.StateSuspended, 5*time.Second)
		p.Set(zktest.Pass)
		waitState(t, events, recipes.StateReconnected, 5*time.Second)
	}
	require.Equal(t, id, s.ID(), "same session after reconnects")
	require.NoError(t, s.Err())
	require.True(t, s.State().Live())
}

func TestExpiryEndsSession(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	s := zkc.Session(t)
	events := s.Subscribe(ctxT(t, 30*time.Second))
	zkc.Expire(t, s)
	ev := waitState(t, events, recipes.StateLost, 10*time.Second)
	require.ErrorIs(t, ev.Err, recipes.ErrExpired)
	require.ErrorIs(t, s.Err(), recipes.ErrExpired)
	require.True(t, recipes.IsLoss(s.Err()))
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Lost")
	}
	require.ErrorIs(t, context.Cause(s.Context()), recipes.ErrExpired)
	// go-zookeeper would open a new session on the same connection; the
	// Session must not come back to life.
	require.Equal(t, recipes.StateLost, s.State())
}

// A client cut off from the ensemble learns it lost its session before the
// server expires it: while the session's ephemeral node still exists on the
// server, not only "within about one timeout".
func TestLocalDeadlineUnderPartition(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	obs := zkc.Conn(t)
	for _, dir := range []string{path.Dir(root), root} {
		if _, err := obs.Create(dir, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatal(err)
		}
	}
	p := zkc.Proxy(t)
	s := p.Session(t, recipes.WithSessionTimeout(2*time.Second))
	node := root + "/ephemeral"
	_, err := s.Conn().Create(node, nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	events := s.Subscribe(ctxT(t, 30*time.Second))
	start := time.Now()
	p.Set(zktest.Blackhole)
	ev := waitState(t, events, recipes.StateLost, 5*time.Second)
	took := time.Since(start)
	require.ErrorIs(t, ev.Err, recipes.ErrDeadline)
	held, _, err := obs.Exists(node)
	require.NoError(t, err)
	require.True(t, held, "the server had expired the session already when the client learned it was lost (%v after the partition)", took)
	require.Equal(t, zktest.Blackhole, p.Mode(), "must be learned before the partition heals")
	t.Logf("partitioned client learned it was lost after %v (timeout %v), while the server still held the session", took, s.Timeout())
}

// A client whose local deadline passed while its connection was silent
// ends the session on the server itself once it can: the holder's node
// goes within a second of the loss, long before the server could have
// expired the session (T = 10 s after the partition began), so it was a
// close, not an expiry.
func TestDeadlineLostSessionIsEndedOnServer(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	obs := zkc.Conn(t)
	p := zkc.Proxy(t)
	s := p.Session(t, recipes.WithSessionTimeout(10*time.Second), recipes.WithSafetyMargin(3*time.Second),
		recipes.WithLossPolicy(recipes.LoseOnSessionEnd))
	require.Equal(t, 10*time.Second, s.Timeout())
	l, err := lock.NewMutex(s, root).Acquire(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	node := s.Path(l.Path())
	cut := time.Now()
	p.Set(zktest.Blackhole) // the server hears nothing from now on
	select {
	case <-l.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("lease not lost")
	}
	lost := time.Now()
	require.ErrorIs(t, l.Err(), recipes.ErrDeadline)
	p.Set(zktest.Pass) // the network heals at once
	for {
		ok, _, err := obs.Exists(node)
		require.NoError(t, err)
		if !ok {
			break
		}
		require.Less(t, time.Since(lost), time.Second, "the node of a session the client gave up on still exists")
		time.Sleep(10 * time.Millisecond) // polling server state, not ordering
	}
	gone := time.Now()
	require.Less(t, gone.Sub(cut), s.Timeout()-time.Second, "gone too late to tell a close from an expiry")
	t.Logf("partition at 0, loss at %v, node gone at %v (the server could expire the session about %v after the last packet before the cut)",
		lost.Sub(cut).Round(time.Millisecond), gone.Sub(cut).Round(time.Millisecond), s.Timeout())
}

func TestHandshakeClampSkipsWedgedServer(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	servers := []string{zktest.SilentServer(t), zkc.Addrs()[0]} // the first never answers
	for i := 0; i < 3; i++ {                                    // go-zookeeper shuffles the servers
		start := time.Now()
		s, err := recipes.Connect(ctxT(t, 20*time.Second), servers, recipes.WithSessionTimeout(4*time.Second))
		require.NoError(t, err)
		took := time.Since(start)
		s.Close()
		// Without the clamp a wedged first server costs 10·recvTimeout ≈ 27 s.
		require.Less(t, took, 4*time.Second, "connect took %v", took)
	}
}

func TestSubscribeStopsWithContext(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	s := zkc.Session(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch := s.Subscribe(ctx)
	cancel()
	select {
	case _, ok := <-ch:
		require.False(t, ok)
	case <-time.After(5 * time.Second):
		t.Fatal("subscription not closed after ctx cancel")
	}
}

func TestChrootAndDigestACL(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	acl := zk.DigestACL(zk.PermAll, "alice", "secret")
	s := zkc.Session(t, recipes.WithChroot(root), recipes.WithDigestAuth("alice", "secret"), recipes.WithACL(acl))
	l, err := lock.NewMutex(s, "/app/lock").Acquire(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	require.Regexp(t, `^/app/lock/_c_[0-9a-f]{32}-lock-\d{10}$`, l.Path())

	obs := zkc.Conn(t)
	_, _, err = obs.Get(root + l.Path())
	require.True(t, errors.Is(err, zk.ErrNoAuth), "unauthenticated read of a digest-protected node: %v", err)
	require.NoError(t, l.Release(ctxT(t, 5*time.Second)))
}

// A request answered with "session expired" on a connection the server
// keeps open ends the session at once: a follower can go on answering the
// pings of a session the ensemble already ended (its close reached the
// follower on a path that does not close connections), and a session that
// waited for go-zookeeper's expiry event would live on with no nodes and
// every write refused.
func TestExpiredReplyEndsSession(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	zktest.Mkdirs(t, zkc.Conn(t), root)
	p := zkc.Proxy(t)
	s := p.Session(t)
	events := s.Subscribe(ctxT(t, 30*time.Second))
	failed := p.FailNextReply(zktest.ErrCodeSessionExpired, zktest.CreateOps...)
	_, err := s.Conn().Create(root+"/n", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
	// The caller sees the answer, or the connection closing under it when
	// the session ends first.
	require.True(t, errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrConnectionClosed), "create: %v", err)
	select {
	case <-failed:
	default:
		t.Fatal("the reply was not rewritten")
	}
	ev := waitState(t, events, recipes.StateLost, 5*time.Second)
	require.ErrorIs(t, ev.Err, recipes.ErrExpired)
	require.ErrorIs(t, context.Cause(s.Context()), recipes.ErrExpired)
	require.Equal(t, zktest.Pass, p.Mode(), "the connection was never cut")
}

// TestProofSyncsReplacePings: an idle Session's proof syncs keep its session
// touched and its connection fed, so go-zookeeper's own pings are dropped
// (a zk.Conn through another proxy, with the same timeout, pings every
// third of it); the session outlives several timeouts without a hitch.
func TestProofSyncsReplacePings(t *testing.T) {
	const timeout = 2 * time.Second
	zkc := zktest.Shared(t, zktest.Config{})
	ours, theirs := zkc.Proxy(t), zkc.Proxy(t)
	s := ours.Session(t, recipes.WithSessionTimeout(timeout))
	events := s.Subscribe(ctxT(t, time.Minute))
	raw := theirs.Conn(t, zktest.ConnSessionTimeout(timeout))
	_, _, err := raw.Exists("/")
	require.NoError(t, err)

	// Three session timeouts' worth of syncs (one every (T−margin−tick)/5).
	require.Eventually(t, func() bool { return ours.Requests(zktest.OpSync) >= 3*5 },
		30*time.Second, 10*time.Millisecond, "the session's proof syncs")
	require.GreaterOrEqual(t, theirs.Requests(zktest.OpPing), 3,
		"control: a zk.Conn pings every third of its timeout")
	// At most one, should the first ping come before the first sync.
	require.LessOrEqual(t, ours.Requests(zktest.OpPing), 1, "pings sent while syncs flowed")
	require.NoError(t, s.Err())
	require.True(t, s.State().Live())
	for {
		select {
		case ev := <-events:
			require.Contains(t, []recipes.State{recipes.StateConnected}, ev.State, "event %v", ev)
			continue
		default:
		}
		break
	}
}
