package barrier_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/zkrecipes/zkrecipes/barrier"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Three workers start a batch together and finish it together.
func ExampleDoubleBarrier() {
	ctx := context.Background()
	servers := exampleServers() // your ensemble, e.g. []string{"zk1:2181", "zk2:2181"}

	var wg sync.WaitGroup
	var mu sync.Mutex
	started := 0
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sess, err := recipes.Connect(ctx, servers)
			if err != nil {
				panic(err)
			}
			defer sess.Close()
			d := barrier.NewDoubleBarrier(sess, "/examples/batch-7", 3)
			if err := d.Enter(ctx); err != nil { // returns once all 3 are in
				panic(err)
			}
			mu.Lock()
			started++
			mu.Unlock()
			if err := d.Leave(ctx); err != nil { // returns once all 3 are done
				panic(err)
			}
		}()
	}
	wg.Wait()
	fmt.Println("workers that ran the batch together:", started)
	// Output: workers that ran the batch together: 3
}

// A gate that holds consumers until the producer has loaded the data.
func ExampleBarrier() {
	ctx := context.Background()
	sess, err := recipes.Connect(ctx, exampleServers())
	if err != nil {
		panic(err)
	}
	defer sess.Close()

	gate := barrier.NewBarrier(sess, "/examples/data-loaded")
	if err := gate.Set(ctx); err != nil {
		panic(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := gate.Wait(ctx); err != nil { // blocks while the gate is set
			panic(err)
		}
		fmt.Println("consumer: data is ready")
	}()
	fmt.Println("producer: loading")
	if err := gate.Remove(ctx); err != nil { // opens the gate
		panic(err)
	}
	<-done
	// Output:
	// producer: loading
	// consumer: data is ready
}
