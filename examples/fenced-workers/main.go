// Command fenced-workers is the zkrecipes demo: several workers contend for
// one lock on a local 3-node ZooKeeper ensemble and write to a resource that
// checks fencing tokens. Midway the holder freezes (as in a long GC pause)
// with a write in hand; its session expires, the next worker takes over
// with a larger token, and when the frozen worker wakes its late write is
// rejected by the fence.
//
//	go run ./examples/fenced-workers            # needs ZooKeeper: see the README
//	go run ./examples/fenced-workers -workers 6 -writes 40
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/zkrecipes/zkrecipes/zktest"
)

func main() {
	cfg := defaultConfig()
	flag.IntVar(&cfg.Workers, "workers", cfg.Workers, "number of workers (sessions)")
	flag.IntVar(&cfg.Writes, "writes", cfg.Writes, "accepted writes to make before stopping")
	flag.IntVar(&cfg.Servers, "servers", cfg.Servers, "ZooKeeper servers to start (1 or 3)")
	flag.DurationVar(&cfg.SessionTimeout, "session-timeout", cfg.SessionTimeout, "ZooKeeper session timeout of each worker")
	flag.Parse()

	if err := demo(cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func demo(cfg Config, out io.Writer) error {
	fmt.Fprintf(out, "Starting a local %d-node ZooKeeper ensemble...\n", cfg.Servers)
	zkc, err := zktest.Launch(zktest.Config{Servers: cfg.Servers})
	if err != nil {
		return err
	}
	defer zkc.Stop()
	fmt.Fprintf(out, "ZooKeeper is up at %v\n\n", zkc.Addrs())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The library logs through slog; keep the demo's own timeline readable.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	res, err := Run(ctx, zkc.Addrs(), cfg, out)
	if err != nil {
		return err
	}
	res.Print(out)
	if !res.StaleRejected {
		return fmt.Errorf("the frozen worker's stale write was not rejected")
	}
	return nil
}
