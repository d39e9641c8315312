package election_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
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

var errShutdown = errors.New("shutting down")

// fn runs while we lead; its ctx is cancelled as soon as leadership is in
// doubt. The term's token fences every write. With WithRequeue, Run
// campaigns again after each term, until its ctx is done.
func ExampleElection_Run() {
	ctx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	sess, err := recipes.Connect(ctx, zktest.ExampleServers()) // your ensemble, e.g. []string{"zk1:2181"}
	if err != nil {
		panic(err)
	}
	defer sess.Close()

	var s store
	var last election.Token
	terms := 0
	e := election.NewElection(sess, "/examples/run/leader",
		election.WithValue([]byte("scheduler-1:8080")), election.WithRequeue())
	err = e.Run(ctx, func(ctx context.Context) error {
		term := election.TermFromContext(ctx)
		terms++
		fmt.Printf("term %d: token larger than the last: %v, write: %v\n",
			terms, term.Token() > last, s.Put(ctx, "tick", term.Token()))
		last = term.Token()
		if terms == 2 {
			stop(errShutdown) // the service is shutting down
			<-ctx.Done()
		}
		return nil // Run resigns, and campaigns again unless ctx is done
	})
	fmt.Println("Run:", err)
	// Output:
	// term 1: token larger than the last: true, write: <nil>
	// term 2: token larger than the last: true, write: <nil>
	// Run: shutting down
}

// A service that should lead whenever it can, for as long as it runs,
// builds its election on a Client: when a session is lost, fn's ctx is
// cancelled with the cause, and Run queues again on the Client's next
// session (its next term has a larger token).
func ExampleElection_Run_client() {
	ctx, stop := context.WithCancelCause(context.Background())
	defer stop(nil)
	client, err := recipes.NewClient(zktest.ExampleServers(), nil) // your ensemble
	if err != nil {
		panic(err)
	}
	defer client.Close()

	e := election.NewElection(client, "/examples/run-client/leader",
		election.WithValue([]byte("scheduler-1:8080")), election.WithRequeue())
	err = e.Run(ctx, func(ctx context.Context) error {
		fmt.Println("leading, token positive:", election.TermFromContext(ctx).Token() > 0)
		stop(errShutdown) // here: serve until the term ends
		<-ctx.Done()
		fmt.Println("term over:", context.Cause(ctx))
		return nil
	})
	fmt.Println("Run:", err) // ctx's cause, or recipes.ErrClientClosed
	// Output:
	// leading, token positive: true
	// term over: shutting down
	// Run: shutting down
}
