package lock_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/zktest"
)

func TestSmoke(t *testing.T) {
	zkc := zktest.Start(t)
	s1, s2 := zkc.Session(t), zkc.Session(t)
	root := zktest.Root(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l1, err := lock.NewMutex(s1, root).Acquire(ctx)
	require.NoError(t, err)
	t.Logf("token %v path %s", l1.Token(), l1.Path())
	_, err = lock.NewMutex(s2, root).TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	got := make(chan *lock.Lease)
	go func() {
		l2, err := lock.NewMutex(s2, root).Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- l2
	}()
	cs, err := lock.NewMutex(s1, root).Contenders(ctx)
	require.NoError(t, err)
	t.Logf("contenders %+v", cs)
	require.NoError(t, l1.Release(ctx))
	l2 := <-got
	require.Greater(t, l2.Token(), l1.Token())
	require.ErrorIs(t, l1.Err(), lock.ErrReleased)
	zkc.Expire(t, s2)
	select {
	case <-l2.Done():
		t.Logf("lost: %v", l2.Err())
		require.ErrorIs(t, l2.Err(), lock.ErrLost)
	case <-time.After(10 * time.Second):
		t.Fatal("not lost")
	}
}
