package lock_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// fence is a resource guarded by fencing tokens: it rejects a write whose
// token is lower than the highest it has seen, and counts what must never
// happen under a correct lock.
type fence struct {
	active atomic.Int32 // holders inside the critical section

	mu         sync.Mutex
	highest    lock.Token
	grants     []lock.Token // tokens in the order holders entered
	writes     int
	stale      int // writes rejected for a token below the highest
	overlaps   int // a holder entered or wrote while another was inside
	decreasing int // a grant whose token was not above the previous grant's
}

func (f *fence) enter(tok lock.Token) {
	overlap := f.active.Add(1) != 1
	f.mu.Lock()
	defer f.mu.Unlock()
	if overlap {
		f.overlaps++
	}
	if n := len(f.grants); n > 0 && tok <= f.grants[n-1] {
		f.decreasing++
	}
	f.grants = append(f.grants, tok)
}

func (f *fence) write(tok lock.Token) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.active.Load() != 1 {
		f.overlaps++
	}
	if tok < f.highest {
		f.stale++
		return false
	}
	f.highest = tok
	f.writes++
	return true
}

func (f *fence) leave() { f.active.Add(-1) }

func TestManySessionsContend(t *testing.T) {
	const (
		sessions   = 8
		goroutines = 4 // per session
		rounds     = 10
		writes     = 3 // per hold
	)
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	var f fence
	var wg sync.WaitGroup
	for s := range sessions {
		sess := zkc.Session(t)
		m := lock.NewMutex(sess, root, lock.WithData(fmt.Appendf(nil, "session-%d", s)))
		for g := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					l, err := m.Acquire(ctx)
					if err != nil {
						t.Errorf("session %d goroutine %d round %d: acquire: %v", s, g, r, err)
						return
					}
					tok := l.Token()
					f.enter(tok)
					for range writes {
						if l.Context().Err() != nil {
							t.Errorf("lease lost while held: %v", context.Cause(l.Context()))
						}
						f.write(tok)
					}
					f.leave()
					if err := l.Release(ctx); err != nil {
						t.Errorf("release: %v", err)
						return
					}
					if !errors.Is(l.Err(), lock.ErrReleased) {
						t.Errorf("after release Err = %v", l.Err())
					}
				}
			}()
		}
	}
	wg.Wait()

	f.mu.Lock()
	defer f.mu.Unlock()
	total := sessions * goroutines * rounds
	require.Len(t, f.grants, total, "grants")
	require.Zero(t, f.stale, "stale tokens accepted by nobody: writes rejected")
	require.Zero(t, f.overlaps, "overlapping holders")
	require.Zero(t, f.decreasing, "tokens not strictly increasing in grant order")
	require.Equal(t, total*writes, f.writes)
	require.True(t, slices.IsSorted(f.grants))

	obs := zkc.Conn(t)
	for _, c := range children(t, obs, root) {
		t.Errorf("node left behind: %s", c)
	}
}

func TestFIFO(t *testing.T) {
	const waiters = 5
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	holder := lock.NewMutex(zkc.Session(t), root)
	l0, err := holder.Acquire(ctx)
	require.NoError(t, err)

	order := make(chan int, waiters)
	errs := make(chan error, waiters)
	for i := range waiters {
		sess := zkc.Session(t)
		m := lock.NewMutex(sess, root)
		go func() {
			l, err := m.Acquire(ctx)
			if err != nil {
				errs <- err
				return
			}
			order <- i // before Release: the send order is the grant order
			if err := l.Release(ctx); err != nil {
				errs <- err
			}
		}()
		waitQueued(t, holder, i+2, sess.ID())
	}
	release(t, l0)

	var got []int
	for range waiters {
		select {
		case i := <-order:
			got = append(got, i)
		case err := <-errs:
			require.NoError(t, err)
		case <-time.After(patience):
			t.Fatalf("grants so far %v: next not within %v", got, patience)
		}
	}
	require.Equal(t, []int{0, 1, 2, 3, 4}, got)
}

func TestTryAcquire(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	s1, s2 := zkc.Session(t), zkc.Session(t)
	m1, m2 := lock.NewMutex(s1, root), lock.NewMutex(s2, root)

	l1, err := m1.TryAcquire(ctx)
	require.NoError(t, err, "free lock")
	require.Equal(t, []string{l1.Path()}, nodesOf(t, obs, root, s1.ID()))

	for range 3 {
		l, err := m2.TryAcquire(ctx)
		require.ErrorIs(t, err, lock.ErrLocked)
		require.Nil(t, l)
		require.Empty(t, nodesOf(t, obs, root, s2.ID()), "TryAcquire left a node behind")
		require.Len(t, children(t, obs, root), 1)
	}
	// Blocked by a waiter ahead of us too, not only by the holder.
	s3 := zkc.Session(t)
	waiting := acquireAsync(ctx, lock.NewMutex(s3, root))
	waitQueued(t, m1, 2, s3.ID())
	_, err = m2.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	require.Empty(t, nodesOf(t, obs, root, s2.ID()))

	release(t, l1)
	r := result(t, waiting, patience, "waiter")
	require.NoError(t, r.err)
	release(t, r.l)

	l2, err := m2.TryAcquire(ctx)
	require.NoError(t, err, "TryAcquire after release")
	require.Greater(t, l2.Token(), r.l.Token())
	release(t, l2)
}

func TestCancelWhileWaiting(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	s1, s2 := zkc.Session(t), zkc.Session(t)
	m1 := lock.NewMutex(s1, root)
	l1, err := m1.Acquire(ctx)
	require.NoError(t, err)

	cause := errors.New("caller gave up")
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	waiting := acquireAsync(wctx, lock.NewMutex(s2, root))
	waitQueued(t, m1, 2, s2.ID())
	notYet(t, waiting, "waiter")
	cancel(cause)
	r := result(t, waiting, patience, "cancelled waiter")
	require.ErrorIs(t, r.err, cause)
	require.Nil(t, r.l)
	require.Empty(t, nodesOf(t, obs, root, s2.ID()), "node left behind right after Acquire returned")
	require.Equal(t, []string{l1.Path()}, nodesOf(t, obs, root, s1.ID()))

	// A deadline works the same way.
	dctx, dcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer dcancel()
	_, err = lock.NewMutex(s2, root).Acquire(dctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Empty(t, nodesOf(t, obs, root, s2.ID()))

	// An already cancelled context creates nothing.
	_, err = lock.NewMutex(s2, root).Acquire(wctx)
	require.ErrorIs(t, err, cause)
	require.Empty(t, nodesOf(t, obs, root, s2.ID()))
	release(t, l1)
}

func TestReleaseIdempotent(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	l, err := lock.NewMutex(zkc.Session(t), root).Acquire(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Err())
	require.False(t, isClosed(l.Done()))
	require.NoError(t, l.Context().Err())

	require.NoError(t, l.Release(ctx))
	require.True(t, isClosed(l.Done()), "Done open after Release returned")
	require.Equal(t, lock.ErrReleased, l.Err())
	require.ErrorIs(t, l.Context().Err(), context.Canceled)
	require.Equal(t, lock.ErrReleased, context.Cause(l.Context()))
	require.Empty(t, children(t, obs, root), "node still there after Release")

	require.NoError(t, l.Release(ctx), "second Release")
	require.Equal(t, lock.ErrReleased, l.Err())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Release(ctx); err != nil {
				t.Errorf("concurrent Release: %v", err)
			}
		}()
	}
	wg.Wait()
}

func TestReleaseConcurrentWithHold(t *testing.T) {
	// Concurrent first Releases all return nil and the node is deleted once.
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	l, err := lock.NewMutex(zkc.Session(t), root).Acquire(ctx)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Release(ctx); err != nil {
				t.Errorf("Release: %v", err)
			}
			if !isClosed(l.Done()) {
				t.Errorf("Done open after Release returned")
			}
		}()
	}
	wg.Wait()
	require.Equal(t, lock.ErrReleased, l.Err())
}

func TestForeignChildrenIgnored(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	zktest.Mkdirs(t, obs, root)
	foreign := map[string][]byte{
		"foo":                     []byte("foo"),
		"_c_xyz-other-0000000001": []byte("other recipe"),
		"lock-abc":                []byte("persistent"),
		"lock-+000000001":         []byte("signed"),
		"read-0000000000":         []byte("a reader"),
	}
	for name, data := range foreign {
		_, err := obs.Create(root+"/"+name, data, 0, zk.WorldACL(zk.PermAll))
		require.NoError(t, err)
	}
	s1, s2 := zkc.Session(t), zkc.Session(t)
	l1, err := lock.NewMutex(s1, root).Acquire(ctx)
	require.NoError(t, err, "foreign children block the lock")
	_, err = lock.NewMutex(s2, root).TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	cs, err := lock.NewMutex(s2, root).Contenders(ctx)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, l1.Token(), cs[0].Token)

	waiting := acquireAsync(ctx, lock.NewMutex(s2, root))
	waitQueued(t, lock.NewMutex(s1, root), 2, s2.ID())
	release(t, l1)
	r := result(t, waiting, patience, "second contender")
	require.NoError(t, r.err)
	release(t, r.l)

	got := children(t, obs, root)
	require.ElementsMatch(t, mapsKeys(foreign), got, "foreign children changed")
	for name, data := range foreign {
		d, _, err := obs.Get(root + "/" + name)
		require.NoError(t, err)
		require.Equal(t, data, d, name)
	}
}

func mapsKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSharedWithZkLock(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	raw := zkc.Conn(t)
	zl := zk.NewLock(raw, root, zk.WorldACL(zk.PermAll))
	sess := zkc.Session(t)
	m := lock.NewMutex(sess, root)

	// zk.Lock holds: we wait.
	require.NoError(t, zl.Lock())
	waiting := acquireAsync(ctx, m)
	waitQueued(t, m, 2, sess.ID())
	notYet(t, waiting, "while zk.Lock holds")
	require.NoError(t, zl.Unlock())
	r := result(t, waiting, patience, "after zk.Unlock")
	require.NoError(t, r.err)

	// We hold: zk.Lock waits.
	zlDone := make(chan error, 1)
	go func() { zlDone <- zl.Lock() }()
	zktest.WaitUntil(t, patience, "zk.Lock queued", func() bool { return len(children(t, raw, root)) == 2 })
	select {
	case err := <-zlDone:
		t.Fatalf("zk.Lock returned (%v) while we hold", err)
	default:
	}
	release(t, r.l)
	select {
	case err := <-zlDone:
		require.NoError(t, err)
	case <-time.After(patience):
		t.Fatal("zk.Lock not granted after our Release")
	}
	_, err := m.TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked, "zk.Lock's node must block us")
	require.NoError(t, zl.Unlock())
	l, err := m.TryAcquire(ctx)
	require.NoError(t, err)
	release(t, l)
}

func TestBadInput(t *testing.T) {
	zkc := shared(t)
	sess := zkc.Session(t)
	ctx := testCtx(t)

	check := func(t *testing.T, m *lock.Mutex, want error) {
		t.Helper()
		_, err := m.Acquire(ctx)
		require.ErrorIs(t, err, want)
		_, err = m.TryAcquire(ctx)
		require.ErrorIs(t, err, want)
		_, err = m.Contenders(ctx)
		require.ErrorIs(t, err, want)
	}
	t.Run("nil session", func(t *testing.T) {
		check(t, lock.NewMutex(nil, "/a"), recipes.ErrNilSession)
	})
	for _, p := range []string{"", "rel", "/", "/a/", "/a//b", "/a/./b", "/a/../b", "/a\x00b"} {
		t.Run(fmt.Sprintf("path %q", p), func(t *testing.T) {
			m := lock.NewMutex(sess, p)
			check(t, m, recipes.ErrInvalidPath)
			_, err := m.Acquire(ctx)
			require.Contains(t, err.Error(), fmt.Sprintf("%q", p))
		})
	}
	t.Run("bad options", func(t *testing.T) {
		_, err := lock.NewMutex(sess, "/a", lock.WithACL(nil)).Acquire(ctx)
		require.ErrorContains(t, err, "empty ACL")
		_, err = lock.NewMutex(sess, "/a", lock.WithLossPolicy(recipes.LossPolicy(42))).Acquire(ctx)
		require.ErrorContains(t, err, "loss policy")
		_, err = lock.NewMutex(sess, zktest.Root(t), nil).TryAcquire(ctx) // a nil option is ignored
		require.NoError(t, err)
	})
	t.Run("nil context", func(t *testing.T) {
		var nilCtx context.Context
		m := lock.NewMutex(sess, zktest.Root(t))
		_, err := m.Acquire(nilCtx)
		require.ErrorContains(t, err, "nil context")
		_, err = m.TryAcquire(nilCtx)
		require.ErrorContains(t, err, "nil context")
		_, err = m.Contenders(nilCtx)
		require.ErrorContains(t, err, "nil context")
		l, err := m.Acquire(ctx)
		require.NoError(t, err)
		require.ErrorContains(t, l.Release(nilCtx), "nil context")
		require.NoError(t, l.Release(ctx))
	})
	t.Run("closed session", func(t *testing.T) {
		s := zkc.Session(t)
		m := lock.NewMutex(s, zktest.Root(t))
		require.NoError(t, s.Close())
		_, err := m.Acquire(ctx)
		require.ErrorIs(t, err, recipes.ErrClosed)
		_, err = m.TryAcquire(ctx)
		require.ErrorIs(t, err, recipes.ErrClosed)
		_, err = m.Contenders(ctx)
		require.ErrorIs(t, err, recipes.ErrClosed)
	})
}

func TestContenders(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	s1, s2, s3 := zkc.Session(t), zkc.Session(t), zkc.Session(t)
	observer := lock.NewMutex(zkc.Session(t), root)

	cs, err := observer.Contenders(ctx)
	require.NoError(t, err, "lock path does not exist yet")
	require.Empty(t, cs)

	l1, err := lock.NewMutex(s1, root, lock.WithData([]byte("one"))).Acquire(ctx)
	require.NoError(t, err)
	w2 := acquireAsync(ctx, lock.NewMutex(s2, root, lock.WithData([]byte("two"))))
	waitQueued(t, observer, 2, s2.ID())
	w3 := acquireAsync(ctx, lock.NewMutex(s3, root, lock.WithData([]byte("three"))))
	waitQueued(t, observer, 3, s3.ID())

	cs, err = observer.Contenders(ctx)
	require.NoError(t, err)
	require.Len(t, cs, 3)
	require.Equal(t, s1.ID(), cs[0].Session, "holder first")
	require.Equal(t, l1.Token(), cs[0].Token)
	require.Equal(t, root+"/"+cs[0].Name, l1.Path())
	for i, want := range []struct {
		sess *recipes.Session
		data string
	}{{s1, "one"}, {s2, "two"}, {s3, "three"}} {
		require.Equal(t, want.sess.ID(), cs[i].Session, i)
		require.Equal(t, want.data, string(cs[i].Data), i)
		require.True(t, isContender(cs[i].Name), cs[i].Name)
		require.False(t, cs[i].Created.IsZero())
		if i > 0 {
			require.Greater(t, cs[i].Seq, cs[i-1].Seq)
			require.Greater(t, cs[i].Token, cs[i-1].Token)
		}
	}

	release(t, l1)
	r2 := result(t, w2, patience, "second")
	require.NoError(t, r2.err)
	require.Equal(t, cs[1].Token, r2.l.Token(), "a waiter's token is the one Contenders showed")
	cs, err = observer.Contenders(ctx)
	require.NoError(t, err)
	require.Len(t, cs, 2)
	require.Equal(t, s2.ID(), cs[0].Session)
	release(t, r2.l)
	r3 := result(t, w3, patience, "third")
	require.NoError(t, r3.err)
	release(t, r3.l)
}

func TestSessionClosedWhileWaiting(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	s1, s2 := zkc.Session(t), zkc.Session(t)
	m1 := lock.NewMutex(s1, root)
	l1, err := m1.Acquire(ctx)
	require.NoError(t, err)
	waiting := acquireAsync(ctx, lock.NewMutex(s2, root))
	waitQueued(t, m1, 2, s2.ID())
	closed := time.Now()
	require.NoError(t, s2.Close())
	r := result(t, waiting, 3*time.Second, "waiter of a closed session")
	require.ErrorIs(t, r.err, recipes.ErrClosed)
	t.Logf("Acquire returned %v after Close began: %v", r.at.Sub(closed), r.err)
	zktest.WaitUntil(t, patience, "closed session's node gone", func() bool {
		return len(nodesOf(t, obs, root, s2.ID())) == 0
	})
	require.NoError(t, l1.Err())
	release(t, l1)
}
