package barrier_test

import (
	"context"
	"fmt"

	"github.com/zkrecipes/zkrecipes/barrier"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// On a Client the gate outlives sessions: it is a persistent node, and a
// Wait whose session is lost carries on with the Client's next session.
func ExampleBarrier_client() {
	ctx := context.Background()
	client, err := recipes.NewClient(exampleServers(), nil) // your ensemble
	if err != nil {
		panic(err)
	}
	defer client.Close()

	gate := barrier.NewBarrier(client, "/examples/maintenance")
	if err := gate.Set(ctx); err != nil {
		panic(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- gate.Wait(ctx) }()
	fmt.Println("maintenance over")
	if err := gate.Remove(ctx); err != nil {
		panic(err)
	}
	fmt.Println("waiter released:", <-waited)
	fmt.Println("Wait on an open gate:", gate.Wait(ctx))
	// Output:
	// maintenance over
	// waiter released: <nil>
	// Wait on an open gate: <nil>
}
