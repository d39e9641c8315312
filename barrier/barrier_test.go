package barrier_test

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
	"go.uber.org/goleak"

	"github.com/zkrecipes/zkrecipes/barrier"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// TestMain skips the package without ZooKeeper (its runnable Examples need
// servers; its tests would skip one by one), runs everything, stops the
// servers and only then checks for leaked goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Wrap(m)) }

// exampleServers is the shared standalone server, for the Examples.
func exampleServers() []string { return zktest.ExampleServers() }

const patience = 15 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestBarrierReleasesAllWaitersOnRemove(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	owner := barrier.NewBarrier(zkc.Session(t), root+"/gate")
	require.NoError(t, owner.Set(ctx))
	require.NoError(t, owner.Set(ctx), "Set is idempotent")

	const waiters = 5
	released := make(chan error, waiters)
	var waiting atomic.Int32
	for i := 0; i < waiters; i++ {
		b := barrier.NewBarrier(zkc.Session(t), root+"/gate")
		go func() {
			waiting.Add(1)
			released <- b.Wait(ctx)
		}()
	}
	// Nobody passes while the gate is closed.
	select {
	case err := <-released:
		t.Fatalf("a waiter passed a closed gate: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, owner.Remove(ctx))
	for i := 0; i < waiters; i++ {
		select {
		case err := <-released:
			require.NoError(t, err)
		case <-time.After(patience):
			t.Fatal("waiter not released by Remove")
		}
	}
	require.NoError(t, owner.Remove(ctx), "Remove is idempotent")
	require.NoError(t, owner.Wait(ctx), "an open gate does not block")
}

func TestBarrierWaitHonoursContextAndSession(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	sess := zkc.Session(t)
	b := barrier.NewBarrier(sess, root+"/gate")
	require.NoError(t, b.Set(testCtx(t)))
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, b.Wait(short), context.DeadlineExceeded)

	s2 := zkc.Session(t)
	done := make(chan error, 1)
	go func() { done <- barrier.NewBarrier(s2, root+"/gate").Wait(context.Background()) }()
	zkc.Expire(t, s2)
	select {
	case err := <-done:
		require.ErrorIs(t, err, recipes.ErrExpired)
	case <-time.After(patience):
		t.Fatal("Wait did not return when its session ended")
	}
	require.NoError(t, b.Remove(testCtx(t)))
}

func TestBadInput(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	sess := zkc.Session(t)
	ctx := testCtx(t)
	require.ErrorIs(t, barrier.NewBarrier(nil, "/a").Set(ctx), recipes.ErrNilSession)
	require.ErrorIs(t, barrier.NewBarrier(sess, "a").Wait(ctx), recipes.ErrInvalidPath)
	//lint:ignore SA1012 testing the nil-context error
	require.Error(t, barrier.NewBarrier(sess, "/a").Wait(nil)) //nolint:staticcheck
	for _, n := range []int{0, -3} {
		err := barrier.NewDoubleBarrier(sess, "/a", n).Enter(ctx)
		require.ErrorContains(t, err, "n >= 1")
	}
	require.ErrorIs(t, barrier.NewDoubleBarrier(sess, zktest.Root(t), 2).Leave(ctx), barrier.ErrState)
}

// TestDoubleBarrierTogether: n participants enter and leave together; no
// one passes Enter before all n have entered, no one passes Leave before
// all have left.
func TestDoubleBarrierTogether(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	const n int32 = 4
	var entering, leaving atomic.Int32 // calls made so far, counted before the call
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i := int32(0); i < n; i++ {
		d := barrier.NewDoubleBarrier(zkc.Session(t), root, int(n), barrier.WithData([]byte(fmt.Sprint(i))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := int32(1); round <= 2; round++ {
				entering.Add(1)
				if err := d.Enter(ctx); err != nil {
					errs <- err
					return
				}
				if got := entering.Load(); got < n*round {
					errs <- fmt.Errorf("round %d: passed Enter when only %d of %d had called it", round, got, n*round)
				}
				leaving.Add(1)
				if err := d.Leave(ctx); err != nil {
					errs <- err
					return
				}
				if got := leaving.Load(); got < n*round {
					errs <- fmt.Errorf("round %d: passed Leave when only %d of %d had called it", round, got, n*round)
				}
				// The next round starts once everyone has left this one.
				for leaving.Load() < n*round && ctx.Err() == nil {
					time.Sleep(2 * time.Millisecond) // local counter, not ordering of servers
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int32(2*n), entering.Load())
	obs := zkc.Conn(t)
	ch, _, err := obs.Children(root)
	if !errors.Is(err, zk.ErrNoNode) {
		require.NoError(t, err)
		require.Empty(t, ch, "nodes left behind")
	}
}

func TestDoubleBarrierNoEarlyPass(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	const n = 3
	passed := make(chan int, n)
	for i := 0; i < n-1; i++ {
		d := barrier.NewDoubleBarrier(zkc.Session(t), root, n)
		go func() {
			if err := d.Enter(ctx); err == nil {
				passed <- i
			}
		}()
	}
	obs := zkc.Conn(t)
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { ch, _, _ := obs.Children(root); return len(ch) == n-1 })
	// Spurious wake-ups: touch the barrier's children (a foreign node comes
	// and goes): nobody may pass with n-1 participants.
	_, err := obs.Create(root+"/noise", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	require.NoError(t, obs.Delete(root+"/noise", -1))
	select {
	case i := <-passed:
		t.Fatalf("participant %d passed Enter with %d of %d entered", i, n-1, n)
	case <-time.After(300 * time.Millisecond):
	}
	last := barrier.NewDoubleBarrier(zkc.Session(t), root, n)
	require.NoError(t, last.Enter(ctx))
	for i := 0; i < n-1; i++ {
		select {
		case <-passed:
		case <-time.After(patience):
			t.Fatal("participants not released when the n-th entered")
		}
	}
	extra := barrier.NewDoubleBarrier(zkc.Session(t), root, n)
	require.ErrorIs(t, extra.Enter(ctx), barrier.ErrFull)
}

func TestDoubleBarrierParticipantSessionDies(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	ctx := testCtx(t)

	// Before the barrier opens: the others get ErrBroken, not a hang.
	root := zktest.Root(t)
	dying := zkc.Session(t)
	got := make(chan error, 1)
	obs := zkc.Conn(t)
	// The dying participant enters first, so the other sees it in its very
	// first read (one that came and went unseen would not break anything).
	dd := barrier.NewDoubleBarrier(dying, root, 3)
	go func() { dd.Enter(ctx) }()
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { ch, _, _ := obs.Children(root); return len(ch) == 1 })
	d1 := barrier.NewDoubleBarrier(zkc.Session(t), root, 3)
	go func() { got <- d1.Enter(ctx) }()
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { ch, _, _ := obs.Children(root); return len(ch) == 2 })
	zkc.Expire(t, dying)
	select {
	case err := <-got:
		require.ErrorIs(t, err, barrier.ErrBroken)
	case <-time.After(patience):
		t.Fatal("Enter hung after a participant's session died")
	}

	// After it opened: a dead participant counts as having left.
	root2 := zktest.Root(t) + "-2"
	dying2 := zkc.Session(t)
	a := barrier.NewDoubleBarrier(zkc.Session(t), root2, 2)
	b := barrier.NewDoubleBarrier(dying2, root2, 2)
	enterErr := make(chan error, 1)
	go func() { enterErr <- b.Enter(ctx) }()
	require.NoError(t, a.Enter(ctx))
	require.NoError(t, <-enterErr)
	left := make(chan error, 1)
	go func() { left <- a.Leave(ctx) }()
	zkc.Expire(t, dying2)
	select {
	case err := <-left:
		require.NoError(t, err)
	case <-time.After(patience):
		t.Fatal("Leave hung waiting for a participant whose session died")
	}
}

// Found by the verification suite: a participant entering while the first
// n were leaving ranked among "the first n" (leavers' nodes were gone) and
// passed. It must get ErrFull: it arrived after the barrier opened.
func TestDoubleBarrierLateEntrantIsFull(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	a := barrier.NewDoubleBarrier(zkc.Session(t), root, 2)
	b := barrier.NewDoubleBarrier(zkc.Session(t), root, 2)
	entered := make(chan error, 1)
	go func() { entered <- a.Enter(ctx) }() // a's node is the lowest
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { ch, _, _ := obs.Children(root); return len(ch) == 1 })
	require.NoError(t, b.Enter(ctx))
	require.NoError(t, <-entered)

	left := make(chan error, 1)
	go func() { left <- b.Leave(ctx) }()                                                                                          // b is the highest: it deletes its node, waits for a
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { ch, _, _ := obs.Children(root); return len(ch) == 2 }) // a's node + ready

	late := barrier.NewDoubleBarrier(zkc.Session(t), root, 2)
	require.ErrorIs(t, late.Enter(ctx), barrier.ErrFull)

	require.NoError(t, a.Leave(ctx))
	select {
	case err := <-left:
		require.NoError(t, err)
	case <-time.After(patience):
		t.Fatal("Leave hung")
	}
}

// WithACL sets the ACL of the nodes the barriers create.
func TestBarrierACL(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	acl := append(zk.DigestACL(zk.PermAll, "svc", "secret"), zk.WorldACL(zk.PermRead)...)
	sess := zkc.Session(t, recipes.WithDigestAuth("svc", "secret"))
	require.NoError(t, barrier.NewBarrier(sess, root+"/gate", barrier.WithACL(acl)).Set(ctx))
	got, _, err := zkc.Conn(t).GetACL(root + "/gate")
	require.NoError(t, err)
	zktest.SameACL(t, acl, got)
	require.ErrorIs(t, zkc.Conn(t).Delete(root+"/gate", -1), zk.ErrNoAuth, "others cannot remove the gate")
	require.NoError(t, barrier.NewBarrier(sess, root+"/gate").Remove(ctx))
	require.ErrorContains(t, barrier.NewDoubleBarrier(sess, root+"/d", 2, barrier.WithACL(nil)).Enter(ctx), "empty ACL")
}
