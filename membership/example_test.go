package membership_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/zkrecipes/zkrecipes/membership"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// A scheduler lists the live workers; workers join with their address.
func ExampleGroup() {
	ctx := context.Background()
	servers := exampleServers() // your ensemble, e.g. []string{"zk1:2181", "zk2:2181"}

	worker, err := recipes.Connect(ctx, servers)
	if err != nil {
		panic(err)
	}
	defer worker.Close()
	m, err := membership.NewGroup(worker, "/examples/workers").Acquire(ctx, "worker-1", []byte("10.0.0.7:8080"))
	if err != nil {
		panic(err)
	}

	scheduler, err := recipes.Connect(ctx, servers)
	if err != nil {
		panic(err)
	}
	defer scheduler.Close()
	live, err := membership.NewGroup(scheduler, "/examples/workers").Members(ctx)
	if err != nil {
		panic(err)
	}
	for _, w := range live {
		fmt.Printf("%s at %s\n", w.ID, w.Data)
	}
	if err := m.Release(ctx); err != nil {
		panic(err)
	}
	// Output: worker-1 at 10.0.0.7:8080
}

// exampleServers is the shared standalone server, for the Examples.
func exampleServers() []string { return zktest.ExampleServers() }

// A worker that stays in the group for as long as it runs joins on a
// Client: when its session is lost it joins again on the next one.
func ExampleGroup_Acquire_client() {
	ctx := context.Background()
	client, err := recipes.NewClient(exampleServers(), nil) // your ensemble
	if err != nil {
		panic(err)
	}
	defer client.Close()
	g := membership.NewGroup(client, "/examples/client-workers")
	m, err := g.Acquire(ctx, "worker-1", []byte("10.0.0.7:8080"))
	if err != nil {
		panic(err)
	}
	fmt.Println("member:", m.ID(), "err:", m.Err(), "token positive:", m.Token() > 0)
	live, err := g.Members(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("members:", len(live))

	// ... serve until shutdown, then leave.
	if err := m.Release(ctx); err != nil {
		panic(err)
	}
	<-m.Done()
	fmt.Println("after leaving:", errors.Is(m.Err(), membership.ErrReleased))
	// Output:
	// member: worker-1 err: <nil> token positive: true
	// members: 1
	// after leaving: true
}

// A scheduler follows the live workers with Watch: the members now, then
// the list after every change.
func ExampleGroup_Watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	servers := exampleServers() // your ensemble, e.g. []string{"zk1:2181", "zk2:2181"}
	scheduler, err := recipes.Connect(ctx, servers)
	if err != nil {
		panic(err)
	}
	defer scheduler.Close()
	workers, err := recipes.Connect(ctx, servers)
	if err != nil {
		panic(err)
	}
	defer workers.Close()

	show := func(ms []membership.Member) {
		var ids []string
		for _, m := range ms {
			ids = append(ids, fmt.Sprintf("%s@%s", m.ID, m.Data))
		}
		fmt.Println("live:", ids)
	}
	updates := membership.NewGroup(scheduler, "/examples/watched-workers").Watch(ctx)
	show(<-updates)

	g := membership.NewGroup(workers, "/examples/watched-workers")
	w1, err := g.Acquire(ctx, "worker-1", []byte("10.0.0.7"))
	if err != nil {
		panic(err)
	}
	show(<-updates)
	w2, err := g.Acquire(ctx, "worker-2", []byte("10.0.0.8"))
	if err != nil {
		panic(err)
	}
	show(<-updates)
	if err := w1.Release(ctx); err != nil {
		panic(err)
	}
	show(<-updates)
	if err := w2.Release(ctx); err != nil {
		panic(err)
	}
	show(<-updates)

	cancel()
	for range updates { // closed once ctx is done
	}
	// Output:
	// live: []
	// live: [worker-1@10.0.0.7]
	// live: [worker-1@10.0.0.7 worker-2@10.0.0.8]
	// live: [worker-2@10.0.0.8]
	// live: []
}
