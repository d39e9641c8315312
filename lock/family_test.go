package lock_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// occupancy tracks how many readers and writers act at once.
type occupancy struct {
	readers, writers, maxReaders atomic.Int32
	violations                   atomic.Int32
}

func (o *occupancy) enter(write bool) {
	if write {
		if o.writers.Add(1) != 1 || o.readers.Load() != 0 {
			o.violations.Add(1)
		}
		return
	}
	n := o.readers.Add(1)
	if o.writers.Load() != 0 {
		o.violations.Add(1)
	}
	for {
		m := o.maxReaders.Load()
		if n <= m || o.maxReaders.CompareAndSwap(m, n) {
			break
		}
	}
}

func (o *occupancy) leave(write bool) {
	if write {
		o.writers.Add(-1)
	} else {
		o.readers.Add(-1)
	}
}

func TestRWMutexReadersShareWritersExclude(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	var occ occupancy
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for s := 0; s < 6; s++ {
		sess := zkc.Session(t)
		rw := lock.NewRWMutex(sess, root)
		for g := 0; g < 2; g++ {
			write := (s+g)%3 == 0
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 8; i++ {
					var l *lock.Lease
					var err error
					if write {
						l, err = rw.Acquire(ctx)
					} else {
						l, err = rw.AcquireRead(ctx)
					}
					if err != nil {
						errs <- err
						return
					}
					occ.enter(write)
					// Hold a little so readers overlap: wait for another
					// goroutine's progress, bounded.
					select {
					case <-time.After(2 * time.Millisecond):
					case <-ctx.Done():
					}
					occ.leave(write)
					if err := l.Release(ctx); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Zero(t, occ.violations.Load(), "a writer overlapped another holder")
	require.Greater(t, occ.maxReaders.Load(), int32(1), "readers never shared the lock")
}

func TestRWMutexFIFOAndTry(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	rw1 := lock.NewRWMutex(zkc.Session(t), root)
	rw2 := lock.NewRWMutex(zkc.Session(t), root)
	r1, err := rw1.AcquireRead(ctx)
	require.NoError(t, err)
	r2, err := rw2.TryAcquireRead(ctx)
	require.NoError(t, err, "readers share")
	_, err = rw2.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked, "a writer must wait for readers")

	// A queued writer blocks later readers (FIFO, no writer starvation).
	wGot := make(chan *lock.Lease, 1)
	go func() {
		l, err := rw2.Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		wGot <- l
	}()
	obs := zkc.Conn(t)
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { return len(children(t, obs, root)) == 3 })
	_, err = rw1.TryAcquireRead(ctx)
	require.ErrorIs(t, err, lock.ErrLocked, "a reader must queue behind a waiting writer")
	require.Len(t, children(t, obs, root), 3, "TryAcquireRead left a node behind")

	require.NoError(t, r1.Release(ctx))
	select {
	case <-wGot:
		t.Fatal("writer got the lock while a reader held it")
	default:
	}
	require.NoError(t, r2.Release(ctx))
	var w *lock.Lease
	select {
	case w = <-wGot:
	case <-time.After(patience):
		t.Fatal("writer not granted after readers left")
	}
	require.Greater(t, w.Token(), r2.Token())
	require.NoError(t, w.Release(ctx))
}

func TestRWMutexCuratorNames(t *testing.T) {
	// A Curator InterProcessReadWriteLock writer (node created by hand with
	// Curator's naming) blocks our readers; a Curator reader does not.
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	zktest.Mkdirs(t, obs, root)
	rw := lock.NewRWMutex(zkc.Session(t), root)

	reader, err := obs.Create(root+"/_c_0b7d3a55-1f0e-4c8e-9a57-0c9b4d1e2f30-__READ__", nil,
		zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	l, err := rw.TryAcquireRead(ctx)
	require.NoError(t, err, "a Curator reader must not block our reader")
	require.NoError(t, l.Release(ctx))
	_, err = rw.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked, "a Curator reader must block our writer")
	require.NoError(t, obs.Delete(reader, -1))

	writer, err := obs.Create(root+"/_c_5e2f9c1a-7d44-4b0b-8f1e-2a6c3b9d8e71-__WRIT__", nil,
		zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, err = rw.TryAcquireRead(ctx)
	require.ErrorIs(t, err, lock.ErrLocked, "a Curator writer must block our reader")
	got := make(chan error, 1)
	go func() {
		l, err := rw.AcquireRead(ctx)
		if err == nil {
			err = l.Release(ctx)
		}
		got <- err
	}()
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { return len(children(t, obs, root)) == 2 })
	require.NoError(t, obs.Delete(writer, -1))
	select {
	case err := <-got:
		require.NoError(t, err)
	case <-time.After(patience):
		t.Fatal("reader not granted after the Curator writer left")
	}
}

func TestSemaphoreNeverExceedsPermits(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	const permits = 3
	var inside, maxInside, violations atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for s := 0; s < 8; s++ {
		sem := lock.NewSemaphore(zkc.Session(t), root, permits)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 6; i++ {
				l, err := sem.Acquire(ctx)
				if err != nil {
					errs <- err
					return
				}
				n := inside.Add(1)
				if n > permits {
					violations.Add(1)
				}
				for {
					m := maxInside.Load()
					if n <= m || maxInside.CompareAndSwap(m, n) {
						break
					}
				}
				// Hold until the permits are all in use (or a bound passes),
				// so the test shows they can be.
				for end := time.Now().Add(200 * time.Millisecond); inside.Load() < permits && time.Now().Before(end); {
					time.Sleep(time.Millisecond)
				}
				inside.Add(-1)
				if err := l.Release(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Zero(t, violations.Load(), "more than %d holders at once", permits)
	require.Equal(t, int32(permits), maxInside.Load(), "permits were never all used")
}

func TestSemaphorePermitFreedBySessionDeath(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	s1, s2 := zkc.Session(t), zkc.Session(t)
	l1, err := lock.NewSemaphore(s1, root, 1).Acquire(ctx)
	require.NoError(t, err)
	sem2 := lock.NewSemaphore(s2, root, 1)
	_, err = sem2.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	got := make(chan *lock.Lease, 1)
	go func() {
		l, err := sem2.Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	zkc.Expire(t, s1)
	select {
	case l2 := <-got:
		require.NotNil(t, l2)
		require.Greater(t, l2.Token(), l1.Token())
	case <-time.After(patience):
		t.Fatal("permit not freed by the holder's expiry")
	}
	select {
	case <-l1.Done():
	case <-time.After(patience):
		t.Fatal("expired holder's lease not over")
	}
}

func TestSemaphoreBadInputAndCountMismatch(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	sess := zkc.Session(t)
	for _, n := range []int{0, -1} {
		_, err := lock.NewSemaphore(sess, root, n).Acquire(ctx)
		require.ErrorContains(t, err, "permits must be at least 1")
	}
	_, err := lock.NewSemaphore(nil, root, 1).Acquire(ctx)
	require.ErrorIs(t, err, recipes.ErrNilSession)
	l, err := lock.NewSemaphore(sess, root, 2).Acquire(ctx)
	require.NoError(t, err)
	_, err = lock.NewSemaphore(sess, root, 5).Acquire(ctx)
	require.ErrorIs(t, err, lock.ErrPermits)
	require.ErrorContains(t, err, "has 2 permits")
	require.NoError(t, l.Release(ctx))
}

func TestMultiLockNoDeadlock(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	paths := []string{root + "/a", root + "/b", root + "/c", root + "/d"}
	holders := make(map[string]*atomic.Int32)
	for _, p := range paths {
		holders[p] = new(atomic.Int32)
	}
	var violations atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for s := 0; s < 5; s++ {
		sess := zkc.Session(t)
		// Overlapping sets, given in different orders.
		set := []string{paths[s%4], paths[(s+1)%4], paths[(s+2)%4]}
		if s%2 == 1 {
			set[0], set[2] = set[2], set[0]
		}
		ml := lock.NewMultiLock(sess, set)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 6; i++ {
				ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				ml2, err := ml.Acquire(ctx)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("set %v: %w", set, err)
					return
				}
				for _, p := range set {
					if holders[p].Add(1) != 1 {
						violations.Add(1)
					}
					if _, ok := ml2.TokenOf(p); !ok {
						errs <- fmt.Errorf("no token for %s", p)
					}
				}
				for _, p := range set {
					holders[p].Add(-1)
				}
				if err := ml2.Release(context.Background()); err != nil {
					errs <- err
					return
				}
				require.ErrorIs(t, ml2.Err(), lock.ErrReleased)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Zero(t, violations.Load())
}

func TestMultiLockAllOrNothing(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	other, err := lock.NewMutex(zkc.Session(t), root+"/b").Acquire(ctx)
	require.NoError(t, err)
	ml := lock.NewMultiLock(zkc.Session(t), []string{root + "/c", root + "/a", root + "/b"})
	_, err = ml.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	require.Empty(t, children(t, obs, root+"/a"), "the lock taken before the failure was not released")
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = ml.Acquire(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Empty(t, children(t, obs, root+"/a"))
	require.Len(t, children(t, obs, root+"/b"), 1, "only the other holder's node")
	require.NoError(t, other.Release(ctx))
	held, err := ml.Acquire(ctx)
	require.NoError(t, err)
	require.Len(t, held.Leases(), 3)
	require.NoError(t, held.Release(ctx))

	_, err = lock.NewMultiLock(zkc.Session(t), nil).Acquire(ctx)
	require.Error(t, err)
	_, err = lock.NewMultiLock(zkc.Session(t), []string{root + "/a", root + "/a"}).Acquire(ctx)
	require.ErrorContains(t, err, "duplicate")
}

func TestGuardedWriteFailsAfterLoss(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	zktest.Mkdirs(t, obs, root)
	_, err := obs.Create(root+"/record", []byte("v0"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)

	s1 := zkc.Session(t)
	l, err := lock.NewMutex(s1, root+"/lock").Acquire(ctx)
	require.NoError(t, err)
	res, err := l.Guard(ctx, &zk.SetDataRequest{Path: root + "/record", Data: []byte("v1"), Version: -1})
	require.NoError(t, err)
	require.Len(t, res, 1)
	data, _, err := obs.Get(root + "/record")
	require.NoError(t, err)
	require.Equal(t, "v1", string(data))

	zkc.Expire(t, s1)
	<-l.Done()
	_, err = l.Guard(ctx, &zk.SetDataRequest{Path: root + "/record", Data: []byte("stale"), Version: -1})
	require.ErrorIs(t, err, lock.ErrNotHeld)
	data, _, err = obs.Get(root + "/record")
	require.NoError(t, err)
	require.Equal(t, "v1", string(data))
}

func TestGuardedWriteRejectedWhenNodeGone(t *testing.T) {
	// The holder does not know yet (its node was deleted behind its back):
	// the server-side check still refuses the write.
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	zktest.Mkdirs(t, obs, root)
	_, err := obs.Create(root+"/record", []byte("v0"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	l, err := lock.NewMutex(zkc.Session(t), root+"/lock").Acquire(ctx)
	require.NoError(t, err)
	require.NoError(t, obs.Delete(root+"/lock/"+lastSegment(l.Path()), -1))
	_, err = l.Guard(ctx, &zk.SetDataRequest{Path: root + "/record", Data: []byte("stale"), Version: -1})
	require.True(t, errors.Is(err, lock.ErrNotHeld), "got %v", err)
	data, _, err := obs.Get(root + "/record")
	require.NoError(t, err)
	require.Equal(t, "v0", string(data))
}

func lastSegment(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
