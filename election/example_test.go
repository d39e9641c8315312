package election_test

import (
	"context"
	"fmt"
	"log"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// store stands for a resource that accepts writes only with a token at
// least as large as the largest it has seen.
type store struct{ highest election.Token }

func (s *store) Put(ctx context.Context, v string, tok election.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if tok < s.highest {
		return fmt.Errorf("stale token %v (seen %v)", tok, s.highest)
	}
	s.highest = tok
	return nil
}

// This example needs a ZooKeeper ensemble on localhost, so it is compiled
// but not run; the package's tests exercise the same calls against real
// servers started by zktest.
func ExampleElection_Run() {
	ctx := context.Background()
	sess, err := recipes.Connect(ctx, []string{"localhost:2181"})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()

	var s store
	e := election.NewElection(sess, "/services/scheduler/leader",
		election.WithValue([]byte("scheduler-1:8080")), election.WithRequeue())
	// fn runs while we lead; its ctx is cancelled as soon as leadership is
	// in doubt. The term's token fences every write.
	err = e.Run(ctx, func(ctx context.Context) error {
		term := election.TermFromContext(ctx)
		for ctx.Err() == nil {
			if err := s.Put(ctx, "tick", term.Token()); err != nil {
				return err
			}
		}
		return nil // lost or cancelled: Run resigns and campaigns again
	})
	log.Print(err)
}

// A service that should lead whenever it can, for as long as it runs,
// builds its election on a Client: when a session is lost, fn's ctx is
// cancelled with the cause, and Run queues again on the Client's next
// session (its next term has a larger token). Compiled, not run.
func ExampleElection_Run_client() {
	ctx := context.Background()
	client, err := recipes.NewClient([]string{"localhost:2181"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	e := election.NewElection(client, "/services/scheduler/leader",
		election.WithValue([]byte("scheduler-1:8080")), election.WithRequeue())
	err = e.Run(ctx, func(ctx context.Context) error {
		log.Printf("leading with token %v", election.TermFromContext(ctx).Token())
		<-ctx.Done()
		log.Printf("term over: %v", context.Cause(ctx))
		return nil
	})
	log.Print(err) // ctx's cause, or recipes.ErrClientClosed
}
