package lock_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// A lease with a 300 ms maximum hold ends at about 300 ms while its holder
// is connected: its context carries the deadline and the cause, its node
// is deleted at once, and a waiter is granted with a larger token.
func TestMaxHoldEndsLeaseAndHandsOver(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })

	const maxHold = 300 * time.Millisecond
	before := time.Now()
	l, err := lock.NewMutex(zkc.Session(t, recipes.WithMeterProvider(mp)), root, lock.WithMaxHold(maxHold)).Acquire(ctx)
	require.NoError(t, err)
	after := time.Now()
	dl, ok := l.Context().Deadline()
	require.True(t, ok, "the lease's context has a deadline")
	require.False(t, dl.Before(before.Add(maxHold)), "deadline %v before grant+max", dl)
	require.False(t, dl.After(after.Add(maxHold)), "deadline %v after grant+max", dl)

	waiter := make(chan *lock.Lease, 1)
	go func() {
		w, err := lock.NewMutex(zkc.Session(t), root).Acquire(ctx)
		if err != nil {
			t.Errorf("waiter: %v", err)
			close(waiter)
			return
		}
		waiter <- w
	}()

	// Checks racing the timer (Err ends the hold itself once the time is
	// past) must not end it, or delete its node, twice.
	for range 4 {
		go func() {
			for l.Err() == nil {
				runtime.Gosched()
			}
		}()
	}
	zktest.ClosedWithin(t, l.Done(), maxHold+patience, "the lease ends at its maximum hold")
	ended := time.Since(before)
	t.Logf("lease ended %v after the acquisition began (max hold %v)", ended, maxHold)
	require.GreaterOrEqual(t, ended, maxHold)
	require.Less(t, ended, maxHold+time.Second)
	require.ErrorIs(t, l.Err(), lock.ErrMaxHold)
	require.ErrorIs(t, l.Err(), lock.ErrLost)
	require.ErrorIs(t, context.Cause(l.Context()), lock.ErrMaxHold)
	require.ErrorIs(t, l.Context().Err(), context.Canceled)

	var w *lock.Lease
	select {
	case w = <-waiter:
	case <-time.After(patience):
		t.Fatal("the waiter was not granted after the maximum hold")
	}
	require.NotNil(t, w)
	require.Greater(t, w.Token(), l.Token())
	exists, _, err := obs.Exists(l.Path())
	require.NoError(t, err)
	require.False(t, exists, "the expired lease's node is gone")
	require.NoError(t, w.Release(ctx))
	require.NoError(t, l.Release(ctx), "Release after the maximum hold is a no-op")

	got := counts(t, reader)
	require.Equal(t, int64(1), got[key("zkrecipes.hold.duration", "end=max_hold,recipe=mutex")], "%v", got)
	require.Zero(t, got[key("zkrecipes.leases.lost", "cause=max_hold,recipe=mutex")], "not counted as lost")
	cleaned := key("zkrecipes.cleanup.nodes", "outcome=deleted,reason=max_hold")
	zktest.WaitUntil(t, patience, "the node's deletion is counted", func() bool { return counts(t, reader)[cleaned] >= 1 })
	require.Equal(t, int64(1), counts(t, reader)[cleaned], "its node deleted once")
}

// A release before the deadline is a normal release, and a maximum hold
// longer than the session's life ends with the session.
func TestMaxHoldReleaseAndSessionEnd(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)

	l, err := lock.NewMutex(zkc.Session(t), root, lock.WithMaxHold(time.Hour)).Acquire(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Release(ctx))
	require.ErrorIs(t, l.Err(), lock.ErrReleased)
	require.False(t, errors.Is(l.Err(), lock.ErrMaxHold))

	sess := zkc.Session(t)
	l, err = lock.NewMutex(sess, root, lock.WithMaxHold(time.Hour)).Acquire(ctx)
	require.NoError(t, err)
	zkc.Expire(t, sess)
	zktest.ClosedWithin(t, l.Done(), patience, "the lease ends with its session")
	require.ErrorIs(t, l.Err(), lock.ErrLost)
	require.False(t, errors.Is(l.Err(), lock.ErrMaxHold), "ended by the session: %v", l.Err())

	_, err = lock.NewMutex(sess, root, lock.WithMaxHold(-time.Second)).Acquire(ctx)
	require.ErrorContains(t, err, "negative maximum hold")
}

// Every lock recipe takes the option: read and write locks, semaphore
// permits, and a MultiLock, whose members all end at one deadline counted
// from the moment all are held.
func TestMaxHoldEveryRecipe(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	sess := zkc.Session(t)
	const maxHold = 200 * time.Millisecond
	opt := lock.WithMaxHold(maxHold)

	r, err := lock.NewRWMutex(sess, root+"/rw", opt).AcquireRead(ctx)
	require.NoError(t, err)
	p, err := lock.NewSemaphore(sess, root+"/sem", 2, opt).Acquire(ctx)
	require.NoError(t, err)
	ml, err := lock.NewMultiLock(sess, []string{root + "/a", root + "/b"}, opt).Acquire(ctx)
	require.NoError(t, err)
	mlDeadline, ok := ml.Context().Deadline()
	require.True(t, ok)
	for _, m := range ml.Leases() {
		d, ok := m.Context().Deadline()
		require.True(t, ok)
		require.Equal(t, mlDeadline, d, "members share the MultiLease's deadline")
	}
	for what, done := range map[string]<-chan struct{}{"read lease": r.Done(), "permit": p.Done(), "multi-lease": ml.Done()} {
		zktest.ClosedWithin(t, done, maxHold+patience, what+" ends at its maximum hold")
	}
	require.ErrorIs(t, r.Err(), lock.ErrMaxHold)
	require.ErrorIs(t, p.Err(), lock.ErrMaxHold)
	require.ErrorIs(t, ml.Err(), lock.ErrMaxHold)

	w, err := lock.NewRWMutex(sess, root+"/rw", opt).TryAcquire(ctx)
	require.NoError(t, err, "the expired reader's node is gone")
	require.NoError(t, w.Release(ctx))
	require.NoError(t, ml.Release(ctx))
}
