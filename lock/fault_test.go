package lock_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// touch makes s send a request and get its answer, so the session's local
// deadline starts from now.
func touch(t *testing.T, s *recipes.Session) {
	t.Helper()
	if _, _, err := s.Conn().Exists("/"); err != nil {
		t.Fatalf("exists /: %v", err)
	}
}

func TestLeaseLostOnExpiry(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	s1, s2 := zkc.Session(t), zkc.Session(t)
	m1 := lock.NewMutex(s1, root)
	l1, err := m1.Acquire(ctx)
	require.NoError(t, err)
	node := l1.Path()

	m2 := lock.NewMutex(s2, root)
	// The next holder records, the moment Acquire returns, whether the old
	// lease already knew it was lost.
	type next struct {
		l         *lock.Lease
		err       error
		oldClosed bool
	}
	got := make(chan next, 1)
	go func() {
		l, err := m2.Acquire(ctx)
		got <- next{l, err, isClosed(l1.Done())}
	}()
	waitQueued(t, m1, 2, s2.ID())

	zkc.Expire(t, s1)
	zktest.ClosedWithin(t, l1.Done(), patience, "lease lost after expiry")
	require.ErrorIs(t, l1.Err(), lock.ErrLost)
	require.ErrorIs(t, context.Cause(l1.Context()), lock.ErrLost)
	t.Logf("old lease: %v", l1.Err())

	var n next
	select {
	case n = <-got:
	case <-time.After(patience):
		t.Fatal("next holder not granted after expiry")
	}
	require.NoError(t, n.err)
	require.True(t, n.oldClosed, "new holder's Acquire returned before the old lease's Done closed")
	require.Greater(t, n.l.Token(), l1.Token())
	ok, _, err := obs.Exists(node)
	require.NoError(t, err)
	require.False(t, ok, "expired session's node still exists")

	require.NoError(t, l1.Release(ctx), "Release after loss")
	require.ErrorIs(t, l1.Err(), lock.ErrLost)
	require.NoError(t, l1.Release(ctx))
	require.NoError(t, n.l.Err(), "old lease's Release touched the new holder")
	release(t, n.l)
}

func TestLeaseLostUnderPartition(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy recipes.LossPolicy
		cause  error // besides lock.ErrLost; nil: any
	}{
		{"LoseOnSuspend", recipes.LoseOnSuspend, nil},
		{"LoseOnSessionEnd", recipes.LoseOnSessionEnd, recipes.ErrDeadline},
	} {
		t.Run(tc.name, func(t *testing.T) {
			zkc := shared(t)
			root := zktest.Root(t)
			ctx := testCtx(t)
			p := zkc.Proxy(t)
			s1 := p.Session(t, recipes.WithLossPolicy(tc.policy))
			require.Equal(t, 2*time.Second, s1.Timeout())
			l1, err := lock.NewMutex(s1, root).Acquire(ctx)
			require.NoError(t, err)

			start := time.Now()
			p.Set(zktest.Blackhole)
			zktest.ClosedWithin(t, l1.Done(), 3*time.Second, "lease lost under partition")
			lostAfter := time.Since(start)
			t.Logf("lost after %v: %v", lostAfter, l1.Err())
			require.ErrorIs(t, l1.Err(), lock.ErrLost)
			if tc.cause != nil {
				require.ErrorIs(t, l1.Err(), tc.cause)
			}
			require.Equal(t, zktest.Blackhole, p.Mode(), "lost only after heal")

			// The lock is usable by others once the server expires the session.
			s2 := zkc.Session(t)
			l2, err := lock.NewMutex(s2, root).Acquire(ctx)
			require.NoError(t, err)
			require.Greater(t, l2.Token(), l1.Token())
			p.Set(zktest.Pass)
			require.NoError(t, l1.Release(ctx))
			require.NoError(t, l2.Err())
			release(t, l2)
		})
	}
}

func TestShortDisconnect(t *testing.T) {
	// A longer session timeout than the default 2 s: go-zookeeper waits 1 s
	// before it redials a single server, and the session must outlive that.
	const timeout = 4 * time.Second

	t.Run("LoseOnSessionEnd keeps the lease", func(t *testing.T) {
		zkc := shared(t)
		root := zktest.Root(t)
		ctx := testCtx(t)
		obs := zkc.Conn(t)
		p := zkc.Proxy(t)
		s1 := p.Session(t, recipes.WithSessionTimeout(timeout))
		l1, err := lock.NewMutex(s1, root, lock.WithLossPolicy(recipes.LoseOnSessionEnd)).Acquire(ctx)
		require.NoError(t, err)
		tok := l1.Token()
		events := s1.Subscribe(ctx)

		touch(t, s1)
		p.Set(zktest.Reset)
		waitState(t, events, recipes.StateSuspended, patience)
		p.Set(zktest.Pass)
		waitState(t, events, recipes.StateReconnected, patience)
		// The lease re-validates itself after the reconnect: give it time to
		// (wrongly) give up.
		select {
		case <-l1.Done():
			t.Fatalf("lease lost across a short disconnect: %v", l1.Err())
		case <-time.After(time.Second):
		}
		require.NoError(t, l1.Err())
		require.NoError(t, l1.Context().Err())
		require.Equal(t, tok, l1.Token())
		ok, st, err := obs.Exists(l1.Path())
		require.NoError(t, err)
		require.True(t, ok, "node gone")
		require.Equal(t, s1.ID(), st.EphemeralOwner)
		require.Equal(t, int64(tok), st.Czxid)

		_, err = lock.NewMutex(zkc.Session(t), root).TryAcquire(ctx)
		require.ErrorIs(t, err, lock.ErrLocked)
		release(t, l1)
	})

	t.Run("LoseOnSuspend loses it and deletes the node", func(t *testing.T) {
		zkc := shared(t)
		root := zktest.Root(t)
		ctx := testCtx(t)
		obs := zkc.Conn(t)
		p := zkc.Proxy(t)
		s1 := p.Session(t, recipes.WithSessionTimeout(timeout))
		l1, err := lock.NewMutex(s1, root).Acquire(ctx)
		require.NoError(t, err)
		events := s1.Subscribe(ctx)

		touch(t, s1)
		p.Set(zktest.Reset)
		zktest.ClosedWithin(t, l1.Done(), patience, "lease lost on disconnect")
		require.ErrorIs(t, l1.Err(), lock.ErrLost)
		require.ErrorIs(t, l1.Err(), recipes.ErrSuspended)
		p.Set(zktest.Pass)
		waitState(t, events, recipes.StateReconnected, patience)
		zktest.WaitUntil(t, patience, "lost lease's node deleted after reconnect", func() bool {
			return len(nodesOf(t, obs, root, s1.ID())) == 0
		})
		require.NoError(t, s1.Err(), "the session itself lives on")

		l2, err := lock.NewMutex(zkc.Session(t), root).TryAcquire(ctx)
		require.NoError(t, err, "others can take the lock")
		require.Greater(t, l2.Token(), l1.Token())
		require.NoError(t, l1.Release(ctx))
		require.NoError(t, l2.Err())
		release(t, l2)
	})
}

func TestCreateReplyLost(t *testing.T) {
	const timeout = 4 * time.Second // outlives go-zookeeper's 1 s redial pause

	// check asserts the outcome: held with exactly our one node, or failed
	// with none of ours left.
	check := func(t *testing.T, obs *zk.Conn, root string, s *recipes.Session, r acquired) {
		t.Helper()
		mine := nodesOf(t, obs, root, s.ID())
		if r.err != nil {
			t.Logf("Acquire failed: %v", r.err)
			require.Empty(t, mine, "failed Acquire left a node")
			return
		}
		require.Equal(t, []string{r.l.Path()}, mine, "exactly one node of ours")
	}

	// proxied: a lock path whose parents exist (so the only create is our
	// contender's) and a session through a proxy, connected.
	proxied := func(t *testing.T) (*zktest.Cluster, string, context.Context, *zk.Conn, *zktest.Proxy, *recipes.Session) {
		zkc := shared(t)
		root := zktest.Root(t)
		obs := zkc.Conn(t)
		zktest.Mkdirs(t, obs, root)
		p := zkc.Proxy(t)
		s1 := p.Session(t, recipes.WithSessionTimeout(timeout))
		touch(t, s1)
		return zkc, root, testCtx(t), obs, p, s1
	}

	t.Run("free lock", func(t *testing.T) {
		zkc, root, ctx, obs, p, s1 := proxied(t)
		dropped := p.DropNextReply(zktest.OpCreate)
		waiting := acquireAsync(ctx, lock.NewMutex(s1, root))
		zktest.ClosedWithin(t, dropped, patience, "create reply dropped")
		r := result(t, waiting, patience, "acquire after lost reply")
		check(t, obs, root, s1, r)
		require.NoError(t, s1.Err())
		require.NoError(t, r.err, "the session lives: the create should be recovered")
		release(t, r.l)

		l2, err := lock.NewMutex(zkc.Session(t), root).TryAcquire(ctx)
		require.NoError(t, err, "lock not usable after a lost create reply")
		release(t, l2)
	})

	t.Run("held lock", func(t *testing.T) {
		zkc := shared(t)
		root := zktest.Root(t)
		ctx := testCtx(t)
		obs := zkc.Conn(t)
		s0 := zkc.Session(t)
		m0 := lock.NewMutex(s0, root)
		l0, err := m0.Acquire(ctx)
		require.NoError(t, err)
		p := zkc.Proxy(t)
		s1 := p.Session(t, recipes.WithSessionTimeout(timeout))
		touch(t, s1)
		dropped := p.DropNextReply(zktest.OpCreate)
		waiting := acquireAsync(ctx, lock.NewMutex(s1, root))
		zktest.ClosedWithin(t, dropped, patience, "create reply dropped")
		waitQueued(t, m0, 2, s1.ID())
		release(t, l0)
		r := result(t, waiting, patience, "acquire after lost reply")
		check(t, obs, root, s1, r)
		require.NoError(t, r.err)
		require.Greater(t, r.l.Token(), l0.Token())
		release(t, r.l)
	})

	t.Run("cancelled while the reply is lost", func(t *testing.T) {
		_, root, ctx, obs, p, s1 := proxied(t)
		p.Set(zktest.DropReplies)
		actx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		waiting := acquireAsync(actx, lock.NewMutex(s1, root))
		// The create went through though its reply is lost.
		zktest.WaitUntil(t, patience, "the create landed", func() bool {
			return len(nodesOf(t, obs, root, s1.ID())) == 1
		})
		<-actx.Done()
		p.Set(zktest.Pass) // resets the connection; the session reconnects
		r := result(t, waiting, patience, "cancelled Acquire")
		require.ErrorIs(t, r.err, context.DeadlineExceeded)
		require.Empty(t, nodesOf(t, obs, root, s1.ID()), "orphan left when Acquire returned")
		require.NoError(t, s1.Err(), "the session must outlive the fault")

		l, err := lock.NewMutex(s1, root).TryAcquire(ctx)
		require.NoError(t, err)
		release(t, l)
	})

	t.Run("cancelled while the list after the create is lost", func(t *testing.T) {
		// The goroutine that sends the create also sends the list that
		// follows it. With the list's reply lost (and the connection reset
		// with it), a cancelled Acquire returns once the node the create
		// made is deleted, which needs the connection back.
		_, root, ctx, obs, p, s1 := proxied(t)
		dropped := p.DropNextReply(zktest.OpGetChildren2)
		actx, cancel := context.WithCancel(ctx)
		defer cancel()
		waiting := acquireAsync(actx, lock.NewMutex(s1, root))
		zktest.ClosedWithin(t, dropped, patience, "list reply dropped")
		require.Len(t, nodesOf(t, obs, root, s1.ID()), 1, "the create landed")
		cancel()
		r := result(t, waiting, patience, "cancelled Acquire")
		require.ErrorIs(t, r.err, context.Canceled)
		require.Empty(t, nodesOf(t, obs, root, s1.ID()), "orphan left when Acquire returned")
		require.NoError(t, s1.Err(), "the session must outlive the fault")
	})

	t.Run("cancelled while recovering", func(t *testing.T) {
		_, root, ctx, obs, p, s1 := proxied(t)
		dropped := p.DropNextReply(zktest.OpCreate)
		// go-zookeeper redials after 1 s: the deadline passes while Acquire
		// waits to look for its node.
		actx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		waiting := acquireAsync(actx, lock.NewMutex(s1, root))
		zktest.ClosedWithin(t, dropped, patience, "create reply dropped")
		r := result(t, waiting, patience, "cancelled Acquire")
		require.ErrorIs(t, r.err, context.DeadlineExceeded)
		require.Empty(t, nodesOf(t, obs, root, s1.ID()), "orphan left when Acquire returned")
		require.NoError(t, s1.Err(), "the session must outlive the fault")
	})
}

func TestNodeDeletedNoticedOnReconnect(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	p := zkc.Proxy(t)
	s1 := p.Session(t, recipes.WithSessionTimeout(4*time.Second), recipes.WithLossPolicy(recipes.LoseOnSessionEnd))
	l1, err := lock.NewMutex(s1, root).Acquire(ctx)
	require.NoError(t, err)
	events := s1.Subscribe(ctx)

	touch(t, s1)
	p.Set(zktest.Reset)
	waitState(t, events, recipes.StateSuspended, patience)
	require.NoError(t, obs.Delete(l1.Path(), -1))
	p.Set(zktest.Pass)
	waitState(t, events, recipes.StateReconnected, patience)
	zktest.ClosedWithin(t, l1.Done(), patience, "lease lost: node deleted while disconnected")
	require.ErrorIs(t, l1.Err(), lock.ErrLost)
	require.ErrorIs(t, l1.Err(), lock.ErrNodeDeleted)
	require.ErrorIs(t, context.Cause(l1.Context()), lock.ErrNodeDeleted)
	require.NoError(t, l1.Release(ctx), "Release after loss")
	require.ErrorIs(t, l1.Err(), lock.ErrLost, "Err after Release of a lost lease")
	require.NoError(t, s1.Err())
}

func TestTokensGrowAcrossLeaderKill(t *testing.T) {
	zkc := zktest.StartCluster(t, zktest.Config{Servers: 3})
	root := zktest.Root(t)
	ctx := testCtx(t)
	l1, err := lock.NewMutex(zkc.Session(t), root).Acquire(ctx)
	require.NoError(t, err)
	release(t, l1)

	old := zkc.KillLeader(t)
	zkc.WaitQuorum(t)
	t.Logf("killed leader %d; new leader %d", old, zkc.Leader())

	l2, err := lock.NewMutex(zkc.Session(t), root).Acquire(ctx)
	require.NoError(t, err)
	t.Logf("tokens %#v then %#v", l1.Token(), l2.Token())
	require.Greater(t, l2.Token(), l1.Token())
	require.Greater(t, l2.Token().Epoch(), l1.Token().Epoch())
	release(t, l2)
}
