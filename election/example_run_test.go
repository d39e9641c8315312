package election_test

import (
	"context"
	"errors"
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

// Observe follows the leader and what it advertises: its value at election
// (WithValue), then what it proclaims, then nobody once it resigns.
func ExampleElection_Observe() {
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

	leaders := election.NewElection(watcher, "/examples/observed").Observe(ctx)
	fmt.Printf("no leader yet: %q\n", (<-leaders).Name)

	term, err := election.NewElection(sess, "/examples/observed",
		election.WithValue([]byte("10.0.0.7:8080 starting"))).Acquire(ctx)
	if err != nil {
		panic(err)
	}
	l := <-leaders
	fmt.Printf("elected: %q, its token: %v\n", l.Value, l.Token == term.Token())
	if err := term.Proclaim(ctx, []byte("10.0.0.7:8080 ready")); err != nil {
		panic(err)
	}
	fmt.Printf("proclaimed: %q\n", (<-leaders).Value)
	if err := term.Release(ctx); err != nil {
		panic(err)
	}
	fmt.Printf("resigned: %q\n", (<-leaders).Name)

	cancel()
	for range leaders { // closed once ctx is done
	}
	// Output:
	// no leader yet: ""
	// elected: "10.0.0.7:8080 starting", its token: true
	// proclaimed: "10.0.0.7:8080 ready"
	// resigned: ""
}

// Release hands leadership over at once: the next candidate leads with a
// larger token, and the old term is over for good.
func ExampleTerm_Release() {
	ctx := context.Background()
	servers := zktest.ExampleServers() // your ensemble, e.g. []string{"zk1:2181"}
	s1, err := recipes.Connect(ctx, servers)
	if err != nil {
		panic(err)
	}
	defer s1.Close()
	s2, err := recipes.Connect(ctx, servers)
	if err != nil {
		panic(err)
	}
	defer s2.Close()

	a := election.NewElection(s1, "/examples/handover", election.WithValue([]byte("a")))
	b := election.NewElection(s2, "/examples/handover", election.WithValue([]byte("b")))
	ta, err := a.Acquire(ctx)
	if err != nil {
		panic(err)
	}
	elected := make(chan *election.Term, 1)
	go func() {
		tb, err := b.Acquire(ctx) // waits while a leads
		if err != nil {
			panic(err)
		}
		elected <- tb
	}()
	leader, err := a.Leader(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("leader: %s\n", leader.Value)

	if err := ta.Release(ctx); err != nil {
		panic(err)
	}
	<-ta.Done()
	fmt.Println("a's term:", ta.Err())
	fmt.Println("a's context cancelled:", ta.Context().Err() != nil)
	fmt.Println("a proclaims:", errors.Is(ta.Proclaim(ctx, []byte("a again")), election.ErrNotLeader))

	tb := <-elected
	defer tb.Release(ctx)
	leader, err = b.Leader(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("leader: %s, token larger: %v\n", leader.Value, tb.Token() > ta.Token())
	// Output:
	// leader: a
	// a's term: election: term released
	// a's context cancelled: true
	// a proclaims: true
	// leader: b, token larger: true
}
