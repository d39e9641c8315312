package recipes_test

import (
	"context"
	"fmt"

	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// Connect opens one session; everything built on it ends with it.
func ExampleConnect() {
	ctx := context.Background()
	servers := zktest.ExampleServers() // your ensemble, e.g. []string{"zk1:2181", "zk2:2181", "zk3:2181"}
	sess, err := recipes.Connect(ctx, servers)
	if err != nil {
		panic(err) // names each server's cause: refused, no answer, ...
	}
	defer sess.Close()
	fmt.Println("state:", sess.State(), "err:", sess.Err())
	// Output: state: connected err: <nil>
}

// A Client keeps a live session for a long-running service, opening a new
// one when the current one is lost; recipes built on it follow it.
func ExampleClient() {
	ctx := context.Background()
	client, err := recipes.NewClient(zktest.ExampleServers(), nil)
	if err != nil {
		panic(err)
	}
	defer client.Close()
	sess, err := client.Live(ctx) // waits while the client (re)connects
	if err != nil {
		panic(err)
	}
	fmt.Println("live:", sess.Err() == nil)
	// Output: live: true
}
