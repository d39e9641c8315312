package lock_test

import (
	"context"
	"errors"
	"path"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/zktest"
)

func TestRevocationDeliveredAndHonoured(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	holder, err := lock.NewMutex(zkc.Session(t), root, lock.WithRevocable()).Acquire(ctx)
	require.NoError(t, err)

	// The holder honours a revocation by releasing.
	honoured := make(chan error, 1)
	go func() {
		<-holder.Context().Done()
		if !errors.Is(context.Cause(holder.Context()), lock.ErrRevoked) {
			honoured <- context.Cause(holder.Context())
			return
		}
		if holder.Err() != nil {
			honoured <- errors.New("a revoked lease must stay held until released")
			return
		}
		honoured <- holder.Release(context.Background())
	}()
	waiter := make(chan *lock.Lease, 1)
	go func() {
		l, err := lock.NewMutex(zkc.Session(t), root).Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		waiter <- l
	}()
	obs := zkc.Conn(t)
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { return len(contenders(t, obs, root)) == 2 })

	asked, broken, err := lock.Revoke(ctx, zkc.Session(t), root, 0)
	require.NoError(t, err)
	require.False(t, broken)
	require.Len(t, asked, 1)
	require.Equal(t, holder.Token(), asked[0].Token)
	select {
	case err := <-honoured:
		require.NoError(t, err)
	case <-time.After(patience):
		t.Fatal("revocation not delivered")
	}
	select {
	case l := <-waiter:
		require.Greater(t, l.Token(), holder.Token())
		require.NoError(t, l.Release(ctx))
	case <-time.After(patience):
		t.Fatal("next contender not granted after the revoked holder released")
	}
	require.ErrorIs(t, holder.Err(), lock.ErrReleased)
}

func TestRevokeForcedBreak(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	// A holder that ignores revocation requests.
	stubborn, err := lock.NewMutex(zkc.Session(t), root, lock.WithRevocable()).Acquire(ctx)
	require.NoError(t, err)
	start := time.Now()
	asked, broken, err := lock.Revoke(ctx, zkc.Session(t), root, 300*time.Millisecond)
	require.NoError(t, err)
	require.True(t, broken)
	require.Len(t, asked, 1)
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "broke before the grace period")
	select {
	case <-stubborn.Done():
		require.ErrorIs(t, stubborn.Err(), lock.ErrLost)
		require.ErrorIs(t, stubborn.Err(), lock.ErrNodeDeleted)
	case <-time.After(patience):
		t.Fatal("broken holder not told")
	}
	l, err := lock.NewMutex(zkc.Session(t), root).TryAcquire(ctx)
	require.NoError(t, err, "lock free after a forced break")
	require.Greater(t, l.Token(), stubborn.Token())
	require.NoError(t, l.Release(ctx))

	// Nothing to revoke on a free lock.
	asked, broken, err = lock.Revoke(ctx, zkc.Session(t), root, time.Second)
	require.NoError(t, err)
	require.Empty(t, asked)
	require.False(t, broken)
}

func TestRevokeReaders(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	rw := lock.NewRWMutex(zkc.Session(t), root, lock.WithRevocable())
	r1, err := rw.AcquireRead(ctx)
	require.NoError(t, err)
	r2, err := rw.AcquireRead(ctx)
	require.NoError(t, err)
	asked, _, err := lock.Revoke(ctx, zkc.Session(t), root, 0)
	require.NoError(t, err)
	require.Len(t, asked, 2, "both readers hold")
	for _, r := range []*lock.Lease{r1, r2} {
		select {
		case <-r.Context().Done():
			require.ErrorIs(t, context.Cause(r.Context()), lock.ErrRevoked)
		case <-time.After(patience):
			t.Fatal("reader not asked to release")
		}
		require.NoError(t, r.Release(ctx))
	}
}

func TestLockDelayAfterHolderDies(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	const delay = 1500 * time.Millisecond
	s1 := zkc.Session(t)
	l1, err := lock.NewMutex(s1, root, lock.WithLockDelay(delay)).Acquire(ctx)
	require.NoError(t, err)

	got := make(chan time.Time, 1)
	go func() {
		l, err := lock.NewMutex(zkc.Session(t), root, lock.WithLockDelay(delay)).Acquire(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		got <- time.Now()
		l.Release(context.Background())
	}()
	obs := zkc.Conn(t)
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { return len(contenders(t, obs, root)) == 2 })
	zkc.Expire(t, s1) // returns once the server has ended the session
	gone := time.Now()
	select {
	case at := <-got:
		require.GreaterOrEqual(t, at.Sub(gone), delay-100*time.Millisecond,
			"granted %v after the holder's session ended; lock-delay is %v", at.Sub(gone), delay)
	case <-time.After(patience):
		t.Fatal("lock never granted after the holder died")
	}
	<-l1.Done()
}

func TestLockDelayNotAfterCleanRelease(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	const delay = 5 * time.Second
	l1, err := lock.NewMutex(zkc.Session(t), root, lock.WithLockDelay(delay)).Acquire(ctx)
	require.NoError(t, err)
	got := make(chan time.Time, 1)
	go func() {
		l, err := lock.NewMutex(zkc.Session(t), root, lock.WithLockDelay(delay)).Acquire(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		got <- time.Now()
		l.Release(context.Background())
	}()
	obs := zkc.Conn(t)
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { return len(contenders(t, obs, root)) == 2 })
	released := time.Now()
	require.NoError(t, l1.Release(ctx))
	select {
	case at := <-got:
		require.Less(t, at.Sub(released), delay/2, "a clean release must hand over at once")
	case <-time.After(patience):
		t.Fatal("lock never granted after a clean release")
	}
	_, err = lock.NewMutex(zkc.Session(t), root, lock.WithLockDelay(-time.Second)).Acquire(ctx)
	require.ErrorContains(t, err, "negative lock delay")
}

// Revoke finds the holder whatever its naming: a kazoo-named holder (ours
// WithKazooNames, or a kazoo client) ahead of a plain-named waiter is the
// one asked and broken, never the waiter.
func TestRevokeKazooNamedHolder(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	holder, err := lock.NewMutex(zkc.Session(t), root, lock.WithKazooNames(), lock.WithNodeWatch()).Acquire(ctx)
	require.NoError(t, err)
	waiterSess := zkc.Session(t)
	waiter := lock.NewMutex(waiterSess, root)
	got := make(chan error, 1)
	go func() {
		l, err := waiter.Acquire(ctx)
		if err == nil {
			err = l.Release(ctx)
		}
		got <- err
	}()
	waitQueued(t, waiter, 2, waiterSess.ID())

	holders, broken, err := lock.Revoke(ctx, zkc.Session(t), root, 200*time.Millisecond)
	require.NoError(t, err)
	require.Len(t, holders, 1)
	require.Equal(t, path.Base(holder.Path()), holders[0].Name, "the holder, not the waiter")
	require.Equal(t, lock.KazooLock, holders[0].Kind)
	require.True(t, broken)
	zktest.ClosedWithin(t, holder.Done(), patience, "the broken holder's lease ends")
	select {
	case err := <-got:
		require.NoError(t, err, "the waiter takes the lock")
	case <-time.After(patience):
		t.Fatal("the waiter was not granted after the break")
	}
}

// Leases that watch their node run no goroutine while held (the session
// hands them their node's events), and each still ends, alone, when its
// node is deleted by someone else, and is revoked when asked.
func TestWatchedLeasesRunNoGoroutine(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	sess := zkc.Session(t)
	obs := zkc.Conn(t)
	const n = 40
	// One lease first, so what the session starts once is running.
	first, err := lock.NewMutex(sess, path.Join(root, "first"), lock.WithRevocable()).Acquire(ctx)
	require.NoError(t, err)
	before := runtime.NumGoroutine()
	leases := make([]*lock.Lease, n)
	for i := range leases {
		opt := lock.WithNodeWatch()
		if i%2 == 1 {
			opt = lock.WithRevocable()
		}
		leases[i], err = lock.NewMutex(sess, path.Join(root, strconv.Itoa(i)), opt).Acquire(ctx)
		require.NoError(t, err)
	}
	require.Less(t, runtime.NumGoroutine()-before, n/4, "goroutines for %d held leases", n)

	// Delete one lease's node behind its back: that lease, and it alone, is lost.
	victim := leases[7]
	require.NoError(t, obs.Delete(victim.Path(), -1))
	select {
	case <-victim.Done():
		require.ErrorIs(t, victim.Err(), lock.ErrNodeDeleted)
	case <-time.After(patience):
		t.Fatal("a watched lease outlived its node")
	}
	// Revoke another: its context is cancelled, and it stays held.
	revoked := leases[9]
	_, _, err = lock.Revoke(ctx, zkc.Session(t), path.Join(root, "9"), 0)
	require.NoError(t, err)
	select {
	case <-revoked.Context().Done():
		require.ErrorIs(t, context.Cause(revoked.Context()), lock.ErrRevoked)
		require.NoError(t, revoked.Err())
	case <-time.After(patience):
		t.Fatal("a revocation was not delivered")
	}
	for i, l := range leases {
		if i != 7 {
			require.NoError(t, l.Err(), "lease %d", i)
		}
		require.NoError(t, l.Release(ctx))
	}
	require.NoError(t, first.Release(ctx))
}
