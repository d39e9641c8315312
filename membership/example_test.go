package membership_test

import (
	"context"
	"fmt"
	"os"
	"testing"

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

func skipWithoutZooKeeper(m *testing.M) {
	if err := zktest.Available(); err != nil && os.Getenv("ZKTEST_REQUIRE") != "1" {
		fmt.Println("skipping package membership:", err)
		os.Exit(0)
	}
}

// A worker that stays in the group for as long as it runs joins on a
// Client: when its session is lost it joins again on the next one.
// Compiled, not run.
func ExampleGroup_Acquire_client() {
	ctx := context.Background()
	client, err := recipes.NewClient([]string{"localhost:2181"}, nil)
	if err != nil {
		panic(err)
	}
	defer client.Close()
	m, err := membership.NewGroup(client, "/examples/workers").Acquire(ctx, "worker-1", []byte("10.0.0.7:8080"))
	if err != nil {
		panic(err)
	}
	defer m.Release(ctx)
	<-ctx.Done() // serve
}
