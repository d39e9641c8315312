package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// newClient returns a Client for zkc, closed when the test ends (before
// zkc's servers stop: cleanups run last-registered first).
func newClient(t *testing.T, zkc *zktest.Cluster) *recipes.Client {
	t.Helper()
	client, err := recipes.NewClient(zkc.Addrs(), []recipes.Option{
		recipes.WithSessionTimeout(2 * time.Second),
		recipes.WithServerTickTime(200 * time.Millisecond),
	})
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	return client
}

// liveSession returns the client's live session.
func liveSession(t *testing.T, ctx context.Context, client *recipes.Client) *recipes.Session {
	t.Helper()
	sess, err := client.Live(ctx)
	require.NoError(t, err)
	return sess
}

// expire ends the client's session sess on the server and waits until the
// client has replaced it, returning the new session.
func expire(t *testing.T, ctx context.Context, zkc *zktest.Cluster, client *recipes.Client, sess *recipes.Session) *recipes.Session {
	t.Helper()
	zkc.Expire(t, sess)
	zktest.ClosedWithin(t, sess.Done(), patience, "the expired session ends")
	next := liveSession(t, ctx, client)
	require.NotEqual(t, sess.ID(), next.ID(), "the client kept the expired session")
	return next
}

// lost waits until l is lost and checks why.
func lost(t *testing.T, l *lock.Lease, what string) {
	t.Helper()
	zktest.ClosedWithin(t, l.Done(), patience, what+" is lost")
	require.ErrorIs(t, l.Err(), lock.ErrLost, what)
}

// A Mutex on a Client outlives its session: the lease granted on the
// expired session is lost, and the next Acquire on the same handle is a
// new grant, on the new session, with a larger token.
func TestClientMutexAcrossSessions(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	client := newClient(t, zkc)
	m := lock.NewMutex(client, root)

	l1, err := m.Acquire(ctx)
	require.NoError(t, err)
	s1 := liveSession(t, ctx, client)
	require.Equal(t, []string{l1.Path()}, nodesOf(t, obs, root, s1.ID()), "the lease's node is owned by the client's session")

	s2 := expire(t, ctx, zkc, client, s1)
	lost(t, l1, "the lease of the expired session") // at the suspension (LoseOnSuspend), at the latest with s1
	// The server ended s1; the client hears so on reconnecting, unless its
	// local deadline passes first.
	require.True(t, errors.Is(s1.Err(), recipes.ErrExpired) || errors.Is(s1.Err(), recipes.ErrDeadline), "s1 ended with %v", s1.Err())

	l2, err := m.Acquire(ctx)
	require.NoError(t, err)
	require.Greater(t, l2.Token(), l1.Token())
	require.NotEqual(t, l1.Path(), l2.Path())
	require.Equal(t, []string{l2.Path()}, nodesOf(t, obs, root, s2.ID()), "the new lease is on the new session")
	require.Empty(t, nodesOf(t, obs, root, s1.ID()))
	require.ErrorIs(t, l1.Err(), lock.ErrLost, "an old lease never comes back")

	// TryAcquire and Contenders use the new session as well.
	_, err = m.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	cs, err := m.Contenders(ctx)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, s2.ID(), cs[0].Session)
	require.Equal(t, l2.Token(), cs[0].Token)
	release(t, l2)
	l3, err := m.TryAcquire(ctx)
	require.NoError(t, err)
	require.Greater(t, l3.Token(), l2.Token())
	release(t, l3)
}

// A blocking Acquire on a Client whose session ends while it waits queues
// again on the next session, and is granted there.
func TestClientWaiterQueuesAgain(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	client := newClient(t, zkc)
	holder := lock.NewMutex(zkc.Session(t), root)
	hl, err := holder.Acquire(ctx)
	require.NoError(t, err)

	s1 := liveSession(t, ctx, client)
	waiting := acquireAsync(ctx, lock.NewMutex(client, root))
	waitQueued(t, holder, 2, s1.ID())

	s2 := expire(t, ctx, zkc, client, s1)
	waitQueued(t, holder, 2, s2.ID())
	notYet(t, waiting, "while the holder holds")

	release(t, hl)
	r := result(t, waiting, patience, "after the release")
	require.NoError(t, r.err)
	require.Greater(t, r.l.Token(), hl.Token())
	cs, err := holder.Contenders(ctx)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, s2.ID(), cs[0].Session)
	release(t, r.l)
}

// Acquire on a Client that has no session (every server is down) waits for
// one until ctx ends, and succeeds once a server is back.
func TestClientAcquireWaitsForSession(t *testing.T) {
	zkc := zktest.StartCluster(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	zkc.Kill(t, 0)
	client := newClient(t, zkc)
	m := lock.NewMutex(client, root)

	for name, acquire := range map[string]func(context.Context) (*lock.Lease, error){
		"Acquire": m.Acquire, "TryAcquire": m.TryAcquire,
	} {
		start := time.Now() // before the deadline is set: it cannot pass sooner than 500 ms after
		short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		l, err := acquire(short)
		cancel()
		require.Nil(t, l, name)
		require.ErrorIs(t, err, context.DeadlineExceeded, name)
		require.GreaterOrEqual(t, time.Since(start), 500*time.Millisecond, "%s returned before its ctx ended", name)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	cause := errors.New("stop waiting")
	cancel(cause)
	_, err := m.Contenders(cctx)
	require.ErrorIs(t, err, cause, "Contenders returns the ctx's cause")
	require.Nil(t, client.Current())

	waiting := acquireAsync(ctx, m)
	notYet(t, waiting, "while every server is down")
	zkc.Restart(t, 0)
	// The client retries with backoff (at most 10 s apart).
	r := result(t, waiting, 30*time.Second, "after the restart")
	require.NoError(t, r.err)
	sess := liveSession(t, ctx, client)
	require.Equal(t, []string{r.l.Path()}, nodesOf(t, zkc.Conn(t), root, sess.ID()))
	release(t, r.l)
}

// RWMutex, Semaphore and MultiLock on a Client: they work, their leases are
// lost with the session, and they work again on the next session.
func TestClientFamilyAcrossSessions(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	client := newClient(t, zkc)
	rw := lock.NewRWMutex(client, root+"/rw")
	sem := lock.NewSemaphore(client, root+"/sem", 2)
	ml := lock.NewMultiLock(client, []string{root + "/b", root + "/a"})

	r, err := rw.AcquireRead(ctx)
	require.NoError(t, err)
	release(t, r)
	p, err := sem.Acquire(ctx)
	require.NoError(t, err)
	release(t, p)

	// Held across the expiry: all lost.
	w1, err := rw.Acquire(ctx)
	require.NoError(t, err)
	p1, err := sem.Acquire(ctx)
	require.NoError(t, err)
	m1, err := ml.Acquire(ctx)
	require.NoError(t, err)
	s1 := liveSession(t, ctx, client)
	s2 := expire(t, ctx, zkc, client, s1)
	lost(t, w1, "the write lease")
	lost(t, p1, "the permit")
	zktest.ClosedWithin(t, m1.Done(), patience, "the multi-lease is lost")
	require.ErrorIs(t, m1.Err(), lock.ErrLost)

	w2, err := rw.Acquire(ctx)
	require.NoError(t, err)
	require.Greater(t, w2.Token(), w1.Token())
	_, err = rw.TryAcquireRead(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	release(t, w2)
	r2, err := rw.TryAcquireRead(ctx)
	require.NoError(t, err)
	release(t, r2)

	p2, err := sem.Acquire(ctx)
	require.NoError(t, err)
	require.Greater(t, p2.Token(), p1.Token())
	p3, err := sem.TryAcquire(ctx)
	require.NoError(t, err)
	_, err = sem.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked, "two permits")
	release(t, p3)
	release(t, p2)

	m2, err := ml.Acquire(ctx)
	require.NoError(t, err)
	for _, l := range m2.Leases() {
		require.NoError(t, l.Err())
	}
	tok1, _ := m1.TokenOf(root + "/a")
	tok2, ok := m2.TokenOf(root + "/a")
	require.True(t, ok)
	require.Greater(t, tok2, tok1)
	cs, err := lock.NewMutex(s2, root+"/b").Contenders(ctx)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, s2.ID(), cs[0].Session)

	// Revoke on a Client asks the holders found through its session.
	holders, broken, err := lock.Revoke(ctx, client, root+"/a", 0)
	require.NoError(t, err)
	require.False(t, broken)
	require.Len(t, holders, 1)
	require.Equal(t, tok2, holders[0].Token)
	require.NoError(t, m2.Release(ctx))
}

// A nil source, a nil *Session or *Client in one, and a closed Client give
// errors, never a panic.
func TestClientBadSources(t *testing.T) {
	zkc := shared(t)
	ctx := testCtx(t)
	var nilSess *recipes.Session
	var nilClient *recipes.Client
	for name, src := range map[string]recipes.Source{"nil": nil, "nil session": nilSess, "nil client": nilClient} {
		t.Run(name, func(t *testing.T) {
			_, err := lock.NewMutex(src, "/a").Acquire(ctx)
			require.ErrorIs(t, err, recipes.ErrNilSession)
			_, err = lock.NewMutex(src, "/a").Contenders(ctx)
			require.ErrorIs(t, err, recipes.ErrNilSession)
			_, err = lock.NewRWMutex(src, "/a").TryAcquireRead(ctx)
			require.ErrorIs(t, err, recipes.ErrNilSession)
			_, err = lock.NewSemaphore(src, "/a", 1).Acquire(ctx)
			require.ErrorIs(t, err, recipes.ErrNilSession)
			_, err = lock.NewMultiLock(src, []string{"/a"}).Acquire(ctx)
			require.ErrorIs(t, err, recipes.ErrNilSession)
			_, _, err = lock.Revoke(ctx, src, "/a", 0)
			require.ErrorIs(t, err, recipes.ErrNilSession)
			_, err = lock.Break(ctx, src, "/a", nil, 0)
			require.ErrorIs(t, err, recipes.ErrNilSession)
		})
	}
	t.Run("invalid path", func(t *testing.T) {
		_, err := lock.NewMutex(newClient(t, zkc), "rel").Acquire(ctx)
		require.ErrorIs(t, err, recipes.ErrInvalidPath)
	})
	t.Run("closed client", func(t *testing.T) {
		client := newClient(t, zkc)
		m := lock.NewMutex(client, zktest.Root(t))
		l, err := m.Acquire(ctx)
		require.NoError(t, err)
		require.NoError(t, client.Close())
		lost(t, l, "the lease of a closed client")
		_, err = m.Acquire(ctx)
		require.ErrorIs(t, err, recipes.ErrClientClosed)
		_, err = lock.NewSemaphore(client, zktest.Root(t), 1).TryAcquire(ctx)
		require.ErrorIs(t, err, recipes.ErrClientClosed)
		_, err = lock.NewMultiLock(client, []string{"/a"}).Acquire(ctx)
		require.ErrorIs(t, err, recipes.ErrClientClosed)
	})
}
