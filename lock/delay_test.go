package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// Regression tests for the lock-delay (issue #10, items 1 and 2).

// keepAlive puts a foreign persistent child under the lock path, so that
// the server never reaps the lock's container node during the test (the
// lock ignores it). It is deleted when the test ends.
func keepAlive(t *testing.T, obs *zk.Conn, root string) {
	t.Helper()
	zktest.Mkdirs(t, obs, root+"/foreign-keepalive")
	t.Cleanup(func() { _ = obs.Delete(root+"/foreign-keepalive", -1) })
}

// awaitReaperPass returns once the server's container reaper has made a
// full pass after this call: a fresh container emptied now (after
// everything that happened before the call) is deleted by the reaper, as is
// every container that was empty when the pass began. It waits for two
// such canaries, so that the deletions the first pass requested are done.
func awaitReaperPass(t *testing.T, obs *zk.Conn, root string) {
	t.Helper()
	for i := 0; i < 2; i++ {
		canary := root + "-canary"
		_, err := obs.CreateContainer(canary, nil, zk.FlagContainer, zk.WorldACL(zk.PermAll))
		require.NoError(t, err)
		_, err = obs.Create(canary+"/x", nil, 0, zk.WorldACL(zk.PermAll))
		require.NoError(t, err)
		require.NoError(t, obs.Delete(canary+"/x", -1))
		zktest.WaitUntil(t, patience, "the container reaper deleted "+canary, func() bool {
			ok, _, err := obs.Exists(canary)
			require.NoError(t, err)
			return !ok
		})
	}
}

// A holder that dies with nobody waiting leaves its lock node empty of
// contenders: the server's container reaper must not take the lock-delay
// with it. The server reaps empty containers every second in zktest.
func TestLockDelaySurvivesContainerReaping(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	const delay = 4 * time.Second
	s1 := zkc.Session(t)
	_, err := lock.NewMutex(s1, root, lock.WithLockDelay(delay)).Acquire(ctx)
	require.NoError(t, err)
	zkc.Expire(t, s1) // returns once the server has ended the session
	gone := time.Now()
	awaitReaperPass(t, obs, root)
	require.Less(t, time.Since(gone), delay, "the reaper took too long for this test to mean anything")

	m := lock.NewMutex(zkc.Session(t), root, lock.WithLockDelay(delay))
	l, err := m.TryAcquire(ctx)
	if err == nil {
		t.Fatalf("TryAcquire granted %v after the holder died: the lock-delay (%v) was lost with the container", time.Since(gone), delay)
	}
	require.ErrorIs(t, err, lock.ErrLocked)
	l, err = m.Acquire(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(gone), delay, "granted before the lock-delay passed")
	release(t, l)
	// A clean release removes the marker: the lock node is reaped again.
	zktest.WaitUntil(t, patience, "the lock node is reaped after a clean release", func() bool {
		ok, _, err := obs.Exists(root)
		require.NoError(t, err)
		return !ok
	})
}

// The delay runs from the first moment a contender found the holder gone,
// as the server recorded it, not from each acquirer's own arrival: an
// acquirer that gives up half-way does not make the next one wait a whole
// delay again.
func TestLockDelayMeasuredFromFirstNotice(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	const delay = 4 * time.Second
	s1 := zkc.Session(t)
	_, err := lock.NewMutex(s1, root, lock.WithLockDelay(delay)).Acquire(ctx)
	require.NoError(t, err)
	keepAlive(t, obs, root)
	zkc.Expire(t, s1)

	start := time.Now()
	bctx, cancel := context.WithTimeout(ctx, delay/2)
	defer cancel()
	_, err = lock.NewMutex(zkc.Session(t), root, lock.WithLockDelay(delay)).Acquire(bctx)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "first acquirer: %v", err)

	l, err := lock.NewMutex(zkc.Session(t), root, lock.WithLockDelay(delay)).Acquire(ctx)
	require.NoError(t, err)
	took := time.Since(start)
	require.GreaterOrEqual(t, took, delay, "granted before the lock-delay passed")
	require.Less(t, took, delay+delay/4,
		"granted %v after the first acquirer found the holder gone: the delay restarted for the second acquirer", took)
	release(t, l)
}

// A Try form is refused while the delay runs and succeeds once it passed.
func TestTryAcquireAfterLockDelayPassed(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	const delay = 2 * time.Second
	s1 := zkc.Session(t)
	_, err := lock.NewMutex(s1, root, lock.WithLockDelay(delay)).Acquire(ctx)
	require.NoError(t, err)
	keepAlive(t, obs, root)
	zkc.Expire(t, s1)
	gone := time.Now()

	m := lock.NewMutex(zkc.Session(t), root, lock.WithLockDelay(delay))
	_, err = m.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked, "the lock-delay is running")
	var l *lock.Lease
	deadline := gone.Add(delay + patience)
	for {
		l, err = m.TryAcquire(ctx)
		if !errors.Is(err, lock.ErrLocked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TryAcquire still refused %v after the holder died (lock-delay %v)", time.Since(gone), delay)
		}
		time.Sleep(50 * time.Millisecond) // polling, not ordering
	}
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(gone), delay, "granted before the lock-delay passed")
	// The lock is held: another Try is refused, with no delay involved.
	_, err = lock.NewMutex(zkc.Session(t), root, lock.WithLockDelay(delay)).TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	release(t, l)
	// After a clean release a Try succeeds at once.
	l, err = m.TryAcquire(ctx)
	require.NoError(t, err)
	release(t, l)
}
