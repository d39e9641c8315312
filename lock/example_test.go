package lock_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// store stands for a resource that accepts writes only with a token at
// least as large as the largest it has seen.
type store struct{ highest lock.Token }

func (s *store) Put(ctx context.Context, v string, tok lock.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if tok < s.highest {
		return fmt.Errorf("stale token %v (seen %v)", tok, s.highest)
	}
	s.highest = tok
	return nil
}

// Acquire, write with the lease's fencing token, release. The next holder
// gets a larger token, so the store turns away a late write of the first.
func ExampleMutex() {
	ctx := context.Background()
	sess := exampleSession(ctx)
	defer sess.Close()

	m := lock.NewMutex(sess, "/examples/jobs/42", lock.WithData([]byte("worker-7")))
	l, err := m.Acquire(ctx) // blocks until held, ctx done or the session over
	if err != nil {
		panic(err)
	}
	var s store
	// l.Context() is cancelled, with a cause, as soon as the lease is lost.
	fmt.Println("write:", s.Put(l.Context(), "result", l.Token()))
	if err := l.Release(ctx); err != nil { // idempotent; fine after a loss
		panic(err)
	}
	fmt.Println("after release:", l.Err())

	next, err := m.Acquire(ctx)
	if err != nil {
		panic(err)
	}
	defer next.Release(ctx)
	fmt.Println("next token larger:", next.Token() > l.Token())
	fmt.Println("next write:", s.Put(next.Context(), "result", next.Token()))
	err = s.Put(ctx, "late result", l.Token()) // the first holder, too late
	fmt.Println("late write rejected:", err != nil)
	// Output:
	// write: <nil>
	// after release: lock: lease released
	// next token larger: true
	// next write: <nil>
	// late write rejected: true
}

// TryAcquire does not wait: it fails with ErrLocked while another process
// holds the lock, leaving no node behind.
func ExampleMutex_TryAcquire() {
	ctx := context.Background()
	worker1 := exampleSession(ctx)
	defer worker1.Close()
	worker2 := exampleSession(ctx)
	defer worker2.Close()

	l, err := lock.NewMutex(worker1, "/examples/jobs/43").TryAcquire(ctx)
	if err != nil {
		panic(err)
	}
	_, err = lock.NewMutex(worker2, "/examples/jobs/43").TryAcquire(ctx)
	fmt.Println("worker 2 while worker 1 holds:", errors.Is(err, lock.ErrLocked))

	if err := l.Release(ctx); err != nil {
		panic(err)
	}
	<-l.Done() // closed once the lease is over: lost, or released
	fmt.Println("worker 1's lease:", errors.Is(l.Err(), lock.ErrReleased))

	l2, err := lock.NewMutex(worker2, "/examples/jobs/43").TryAcquire(ctx)
	fmt.Println("worker 2 after the release:", err)
	if err == nil {
		l2.Release(ctx)
	}
	// Output:
	// worker 2 while worker 1 holds: true
	// worker 1's lease: true
	// worker 2 after the release: <nil>
}

// Contenders shows the lock's queue, holder first, with what each contender
// stored (WithData).
func ExampleMutex_Contenders() {
	ctx := context.Background()
	sess := exampleSession(ctx)
	defer sess.Close()
	m := lock.NewMutex(sess, "/examples/jobs/44", lock.WithData([]byte("worker-7")))
	l, err := m.Acquire(ctx)
	if err != nil {
		panic(err)
	}
	defer l.Release(ctx)

	cs, err := m.Contenders(ctx)
	if err != nil {
		panic(err)
	}
	for _, c := range cs {
		fmt.Printf("%s, kind %q, holds our token: %v\n", c.Data, c.Kind, c.Token == l.Token())
	}
	// Output: worker-7, kind "lock-", holds our token: true
}

// A long-running service builds its locks on a Client: Acquire waits for the
// Client's live session, and the next Acquire after a lost session is a new
// grant on the new one.
func ExampleMutex_client() {
	ctx := context.Background()
	client, err := recipes.NewClient(zktest.ExampleServers(), nil) // your ensemble
	if err != nil {
		panic(err)
	}
	defer client.Close()

	l, err := lock.NewMutex(client, "/examples/jobs/45").Acquire(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("held:", l.Err() == nil, "token positive:", l.Token() > 0)
	if err := l.Release(ctx); err != nil {
		panic(err)
	}
	fmt.Println("released:", errors.Is(l.Err(), lock.ErrReleased))
	// Output:
	// held: true token positive: true
	// released: true
}

// Break takes a lock away from a holder that does not let go: the holder's
// node is deleted, a WithNodeWatch (or WithRevocable) holder loses its lease
// at once, and the next holder's larger token fences any late write.
func ExampleBreak() {
	ctx := context.Background()
	worker := exampleSession(ctx)
	defer worker.Close()
	operator := exampleSession(ctx)
	defer operator.Close()

	const path = "/examples/stuck"
	l, err := lock.NewMutex(worker, path, lock.WithNodeWatch()).Acquire(ctx)
	if err != nil {
		panic(err)
	}
	defer l.Release(ctx) // idempotent, also after a loss

	m := lock.NewMutex(operator, path)
	holders, err := m.Contenders(ctx)
	if err != nil {
		panic(err)
	}
	broken, err := lock.Break(ctx, operator, path, holders, 0) // no grace period
	fmt.Println("broken:", broken, "err:", err)
	<-l.Done()
	fmt.Println("holder lost its lease:", errors.Is(l.Err(), lock.ErrLost), errors.Is(l.Err(), lock.ErrNodeDeleted))

	next, err := m.TryAcquire(ctx)
	if err != nil {
		panic(err)
	}
	defer next.Release(ctx)
	fmt.Println("next token larger:", next.Token() > l.Token())
	// Output:
	// broken: true err: <nil>
	// holder lost its lease: true true
	// next token larger: true
}
