package lock_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// Issue #10, item 4: TryAcquire takes a free permit even while another
// acquirer holds the semaphore's internal mutex (as every acquirer does
// between taking it and getting its permit).
func TestSemaphoreTryAcquireWhileInternalMutexHeld(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	sem := lock.NewSemaphore(zkc.Session(t), root, 2)
	guard, err := lock.NewMutex(zkc.Session(t), root+"/locks").Acquire(ctx)
	require.NoError(t, err)

	l1, err := sem.TryAcquire(ctx)
	require.NoError(t, err, "a permit is free")
	l2, err := sem.TryAcquire(ctx)
	require.NoError(t, err, "a second permit is free")
	_, err = sem.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked, "both permits are held")
	require.Len(t, children(t, zkc.Conn(t), root+"/leases"), 2, "the refused Try left a node behind")

	release(t, l1)
	l3, err := sem.TryAcquire(ctx)
	require.NoError(t, err, "a permit was freed")
	release(t, l2)
	release(t, l3)
	release(t, guard)
}
