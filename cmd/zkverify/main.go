// Command zkverify is the worker process of the randomized verification
// suite (cmd/zkverify/internal/verify): it connects to ZooKeeper through the addresses it
// is given (a fault proxy it does not control), runs the workloads and prints
// its history as JSON lines on stdout. It stops, releasing what it holds, on
// SIGTERM or when stdin is closed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zkrecipes/zkrecipes/cmd/zkverify/internal/verify"
)

func main() {
	var cfg verify.WorkerConfig
	var servers, workloads string
	flag.StringVar(&cfg.Name, "name", "w", "worker name in the history")
	flag.StringVar(&servers, "servers", "", "comma-separated ZooKeeper (proxy) addresses")
	flag.StringVar(&cfg.FenceURL, "fence", "", "URL of the fenced resource")
	flag.StringVar(&cfg.Root, "root", "/verify", "znode root of the run")
	flag.StringVar(&workloads, "workloads", strings.Join(verify.DefaultWorkloads, ","), "workloads to run")
	flag.DurationVar(&cfg.SessionTimeout, "session-timeout", 2*time.Second, "session timeout")
	flag.DurationVar(&cfg.ServerTick, "server-tick", 0, "the servers' tickTime, if known")
	flag.Int64Var(&cfg.Seed, "seed", 1, "seed of the worker's random choices")
	flag.Parse()
	cfg.Servers = strings.Split(servers, ",")
	cfg.Workloads = strings.Split(workloads, ",")

	sigCtx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithCancel(sigCtx)
	defer cancel()
	go func() { // the orchestrator closing stdin also stops us
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := verify.RunWorker(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "zkverify:", err)
		os.Exit(2)
	}
}
