package lock_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

func exampleSession(ctx context.Context) *recipes.Session {
	sess, err := recipes.Connect(ctx, zktest.ExampleServers()) // your ensemble, e.g. []string{"zk1:2181"}
	if err != nil {
		panic(err)
	}
	return sess
}

// Readers share the lock; a writer excludes them.
func ExampleRWMutex() {
	ctx := context.Background()
	sess := exampleSession(ctx)
	defer sess.Close()
	rw := lock.NewRWMutex(sess, "/examples/config")

	r1, _ := rw.AcquireRead(ctx)
	r2, err := rw.TryAcquireRead(ctx)
	fmt.Println("second reader:", err)
	_, err = rw.TryAcquire(ctx)
	fmt.Println("writer while read:", errors.Is(err, lock.ErrLocked))
	r1.Release(ctx)
	r2.Release(ctx)
	w, err := rw.TryAcquire(ctx)
	fmt.Println("writer once readers left:", err)
	w.Release(ctx)
	// Output:
	// second reader: <nil>
	// writer while read: true
	// writer once readers left: <nil>
}

// At most two holders at a time.
func ExampleSemaphore() {
	ctx := context.Background()
	sess := exampleSession(ctx)
	defer sess.Close()
	sem := lock.NewSemaphore(sess, "/examples/pool", 2)

	a, _ := sem.Acquire(ctx)
	b, _ := sem.Acquire(ctx)
	_, err := sem.TryAcquire(ctx)
	fmt.Println("third permit:", errors.Is(err, lock.ErrLocked))
	a.Release(ctx)
	c, err := sem.TryAcquire(ctx)
	fmt.Println("after a release:", err)
	b.Release(ctx)
	c.Release(ctx)
	// Output:
	// third permit: true
	// after a release: <nil>
}

// Several locks at once, all or nothing, in a fixed order (no deadlock).
func ExampleMultiLock() {
	ctx := context.Background()
	sess := exampleSession(ctx)
	defer sess.Close()
	ml := lock.NewMultiLock(sess, []string{"/examples/accounts/b", "/examples/accounts/a"})
	held, err := ml.Acquire(ctx)
	if err != nil {
		panic(err)
	}
	defer held.Release(ctx)
	ta, _ := held.TokenOf("/examples/accounts/a")
	tb, _ := held.TokenOf("/examples/accounts/b")
	fmt.Println("members:", len(held.Leases()), "tokens positive:", ta > 0 && tb > 0)
	// Output: members: 2 tokens positive: true
}

// Guard writes to ZooKeeper only while the lock is held: the write and a
// check of our contender node commit together.
func ExampleLease_Guard() {
	ctx := context.Background()
	sess := exampleSession(ctx)
	defer sess.Close()
	l, err := lock.NewMutex(sess, "/examples/guarded").Acquire(ctx)
	if err != nil {
		panic(err)
	}
	owner := sess.Path("/examples/guarded-owner")
	_, err = l.Guard(ctx, &zk.CreateRequest{Path: owner, Data: []byte("worker-7"), Acl: zk.WorldACL(zk.PermAll)})
	fmt.Println("while held:", err)
	l.Release(ctx)
	_, err = l.Guard(ctx, &zk.SetDataRequest{Path: owner, Data: []byte("late"), Version: -1})
	fmt.Println("after release:", errors.Is(err, lock.ErrNotHeld))
	_ = sess.Conn().Delete(owner, -1)
	// Output:
	// while held: <nil>
	// after release: true
}

// Revoke asks a holder that opted in (WithRevocable) to let go: its lease's
// Context is cancelled with ErrRevoked, and it releases when it is ready.
func ExampleRevoke() {
	ctx := context.Background()
	sess := exampleSession(ctx)
	defer sess.Close()
	l, err := lock.NewMutex(sess, "/examples/report", lock.WithRevocable()).Acquire(ctx)
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-l.Context().Done()
		fmt.Println("holder asked to release:", errors.Is(context.Cause(l.Context()), lock.ErrRevoked))
		l.Release(context.Background())
	}()
	holders, broken, err := lock.Revoke(ctx, sess, "/examples/report", 10*time.Second)
	<-done
	fmt.Println("asked:", len(holders), "broken:", broken, "err:", err)
	// Output:
	// holder asked to release: true
	// asked: 1 broken: false err: <nil>
}
