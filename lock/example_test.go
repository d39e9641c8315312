package lock_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
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

// This example needs a ZooKeeper server on localhost:2181, so it is compiled
// but not run; the package's tests exercise the same calls against real
// servers started by zktest.
func ExampleMutex() {
	ctx := context.Background()
	sess, err := recipes.Connect(ctx, []string{"localhost:2181"})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()

	m := lock.NewMutex(sess, "/jobs/42/lock", lock.WithData([]byte("worker-7")))
	l, err := m.Acquire(ctx) // blocks until held, ctx done or the session over
	if err != nil {
		log.Fatal(err)
	}
	defer l.Release(context.WithoutCancel(ctx)) // idempotent; fine after loss

	var s store
	// l.Context() is cancelled, with a cause, as soon as the lease is lost.
	if err := s.Put(l.Context(), "result", l.Token()); err != nil {
		log.Fatal(err)
	}
}

func ExampleMutex_TryAcquire() {
	ctx := context.Background()
	sess, err := recipes.Connect(ctx, []string{"localhost:2181"})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()

	l, err := lock.NewMutex(sess, "/jobs/42/lock").TryAcquire(ctx)
	if errors.Is(err, lock.ErrLocked) {
		return // someone else has it; no node of ours is left behind
	}
	if err != nil {
		log.Fatal(err)
	}
	defer l.Release(context.WithoutCancel(ctx))
	<-l.Done() // until lost (or released elsewhere)
	fmt.Println(l.Err())
}
