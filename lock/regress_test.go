package lock_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// Regression tests for defects found in review.

// A waiter whose node was deleted behind its back, freed on the fast path
// (its predecessor was the head), must not become a second holder.
func TestFastPathDoesNotGrantADeletedNode(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	a, err := lock.NewMutex(zkc.Session(t), root).Acquire(ctx)
	require.NoError(t, err)

	type result struct {
		l   *lock.Lease
		err error
	}
	bGot, cGot := make(chan result, 1), make(chan result, 1)
	go func() {
		l, err := lock.NewMutex(zkc.Session(t), root).Acquire(ctx)
		bGot <- result{l, err}
	}()
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { return len(children(t, obs, root)) == 2 })
	bNode := children(t, obs, root)
	go func() {
		l, err := lock.NewMutex(zkc.Session(t), root).Acquire(ctx)
		cGot <- result{l, err}
	}()
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { return len(children(t, obs, root)) == 3 })

	// Delete B's node (B waits on A and cannot know).
	var bName string
	for _, n := range bNode {
		if root+"/"+n != a.Path() {
			bName = n
		}
	}
	require.NoError(t, obs.Delete(root+"/"+bName, -1))
	require.NoError(t, a.Release(ctx))

	var c result
	select {
	case c = <-cGot:
		require.NoError(t, c.err)
	case <-time.After(patience):
		t.Fatal("C not granted")
	}
	select {
	case b := <-bGot:
		require.Error(t, b.err, "B was granted a lease on a deleted node while C holds")
		require.ErrorIs(t, b.err, lock.ErrNodeDeleted)
	case <-time.After(patience):
		t.Fatal("B's Acquire did not return")
	}
	require.NoError(t, c.l.Release(ctx))
}

// A lease that watches its node must still apply LoseOnSuspend when the
// disconnect happens while it is busy re-arming the watch.
func TestNodeWatchLeaseLosesOnSuspend(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	p := zkc.Proxy(t)
	sess := p.Session(t)
	l, err := lock.NewMutex(sess, root, lock.WithNodeWatch()).Acquire(ctx)
	require.NoError(t, err)
	events := sess.Subscribe(ctx)

	// The lease re-reads the node after a data change: lose that reply
	// (the connection is reset), so the suspension happens mid-re-arm.
	dropped := p.DropNextReply(zktest.OpGetData)
	_, err = obs.Set(root+"/"+lastSegment(l.Path()), []byte("poke"), -1)
	require.NoError(t, err)
	select {
	case <-dropped:
	case <-time.After(patience):
		t.Fatal("no GetData reply dropped")
	}
	for ev := range events {
		if ev.State == recipes.StateReconnected {
			break
		}
	}
	select {
	case <-l.Done():
		require.ErrorIs(t, l.Err(), recipes.ErrSuspended)
	case <-time.After(patience):
		t.Fatal("lease survived a suspension under LoseOnSuspend")
	}
}

// A revocation's grace period is not cut short by a change of the holder's
// data (a second revocation, say).
func TestRevokeWaitsFullGrace(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	holder, err := lock.NewMutex(zkc.Session(t), root, lock.WithRevocable()).Acquire(ctx)
	require.NoError(t, err)
	const grace = 1500 * time.Millisecond
	start := time.Now()
	type res struct {
		broken bool
		err    error
	}
	done := make(chan res, 1)
	go func() {
		_, broken, err := lock.Revoke(ctx, zkc.Session(t), root, grace)
		done <- res{broken, err}
	}()
	<-holder.Context().Done() // the first revocation arrived
	_, _, err = lock.Revoke(ctx, zkc.Session(t), root, 0)
	require.NoError(t, err)
	select {
	case r := <-done:
		require.NoError(t, r.err)
		require.True(t, r.broken)
		require.GreaterOrEqual(t, time.Since(start), grace, "lock broken before the grace period ended")
	case <-time.After(patience):
		t.Fatal("Revoke did not return")
	}
	<-holder.Done()
	require.True(t, errors.Is(holder.Err(), lock.ErrNodeDeleted))
}

func TestTryWithLockDelayDoesNotBlock(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	s1 := zkc.Session(t)
	_, err := lock.NewMutex(s1, root, lock.WithLockDelay(10*time.Second)).Acquire(ctx)
	require.NoError(t, err)
	zkc.Expire(t, s1)
	start := time.Now()
	_, err = lock.NewMutex(zkc.Session(t), root, lock.WithLockDelay(10*time.Second)).TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked, "the lock-delay is running")
	require.Less(t, time.Since(start), 3*time.Second, "TryAcquire blocked on the lock-delay")
}

// Found by the verification suite: a MultiLock member taken early could be
// lost (connection suspended) while waiting for a later member, and Acquire
// returned a MultiLease holding a lost member.
func TestMultiLockDoesNotReturnALostMember(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	other, err := lock.NewMutex(zkc.Session(t), root+"/b").Acquire(ctx)
	require.NoError(t, err)

	p := zkc.Proxy(t)
	sess := p.Session(t)
	events := sess.Subscribe(ctx)
	type res struct {
		ml  *lock.MultiLease
		err error
	}
	got := make(chan res, 1)
	go func() {
		ml, err := lock.NewMultiLock(sess, []string{root + "/a", root + "/b"}).Acquire(ctx)
		got <- res{ml, err}
	}()
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { return len(children(t, obs, root+"/b")) == 2 }) // holds a, queued on b
	p.Set(zktest.Reset)                                                                                                    // suspended: under LoseOnSuspend the lease on a is lost
	waitState(t, events, recipes.StateSuspended, patience)
	p.Set(zktest.Pass)
	waitState(t, events, recipes.StateReconnected, patience)
	require.NoError(t, other.Release(ctx))

	var r res
	select {
	case r = <-got:
	case <-time.After(patience):
		t.Fatal("MultiLock.Acquire did not return")
	}
	require.NoError(t, r.err)
	require.NoError(t, r.ml.Err(), "MultiLease over on arrival")
	for _, l := range r.ml.Leases() {
		require.NoError(t, l.Err(), "member %s lost", l.Path())
		ok, _, err := obs.Exists(l.Path())
		require.NoError(t, err)
		require.True(t, ok, "member %s has no node", l.Path())
	}
	require.NoError(t, r.ml.Release(ctx))
}

// Issue #10, item 3: when a waiter's own-node watch has fired for a data
// change, the watch is spent and a later deletion of the node sends
// nothing; the fast path must read again rather than take the spent watch's
// silence for proof that the node exists.
func TestFastPathAfterOwnDataChange(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	a, err := lock.NewMutex(zkc.Session(t), root).Acquire(ctx)
	require.NoError(t, err)
	bSess := zkc.Session(t)
	bGot := acquireAsync(ctx, lock.NewMutex(bSess, root, lock.WithNodeWatch()))
	var bPath string
	zktest.WaitUntil(t, patience, "server state is reached", func() bool {
		for _, c := range children(t, obs, root) {
			if root+"/"+c != a.Path() {
				bPath = root + "/" + c
			}
		}
		return bPath != ""
	})
	// B watches its own node and A's (its blocker).
	herdWaitFor(t, "B's watches", func() (bool, string) {
		w := herdWatchers(t, zkc)
		watching := func(p string) bool {
			for _, id := range w[p] {
				if id == bSess.ID() {
					return true
				}
			}
			return false
		}
		return watching(bPath) && watching(a.Path()), "not armed"
	})

	_, err = obs.Set(bPath, []byte("poke"), -1) // fires B's own watch
	require.NoError(t, err)
	require.NoError(t, obs.Delete(bPath, -1)) // sends B nothing
	release(t, a)

	b := result(t, bGot, patience, "B")
	if b.err == nil {
		ok, _, _ := obs.Exists(root + "/" + lastSegment(b.l.Path()))
		t.Fatalf("B was granted a lease (%s, node exists: %v) although its node was deleted", b.l.Path(), ok)
	}
	require.ErrorIs(t, b.err, lock.ErrNodeDeleted)
}
