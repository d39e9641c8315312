package election_test

import (
	"context"
	"fmt"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// Acquire blocks until elected; Observe streams who leads, for candidates
// and observers alike.
func ExampleElection_Acquire() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	servers := zktest.ExampleServers() // your ensemble, e.g. []string{"zk1:2181"}
	sess, err := recipes.Connect(ctx, servers)
	if err != nil {
		panic(err)
	}
	defer sess.Close()
	watcher, err := recipes.Connect(ctx, servers)
	if err != nil {
		panic(err)
	}
	defer watcher.Close()

	leaders := election.NewElection(watcher, "/examples/scheduler").Observe(ctx)
	fmt.Printf("leader at first: %q\n", (<-leaders).Value)

	e := election.NewElection(sess, "/examples/scheduler", election.WithValue([]byte("scheduler-1")))
	term, err := e.Acquire(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("observed: %q\n", (<-leaders).Value)
	fmt.Println("token positive:", term.Token() > 0)
	if err := term.Release(ctx); err != nil {
		panic(err)
	}
	fmt.Printf("after resigning: %q\n", (<-leaders).Value)
	// Output:
	// leader at first: ""
	// observed: "scheduler-1"
	// token positive: true
	// after resigning: ""
}
