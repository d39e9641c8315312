package election_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// The environment of the leader process that BenchmarkElectionKill100
// starts (it re-executes the test binary with -test.run of
// TestElectionKillChild).
const (
	benchChildEnv        = "ZKRECIPES_ELECTION_KILL_CHILD" // the servers, comma-separated; the gate
	benchChildPathEnv    = "ZKRECIPES_ELECTION_KILL_PATH"
	benchChildTimeoutEnv = "ZKRECIPES_ELECTION_KILL_TIMEOUT" // the session timeout (time.ParseDuration)
	benchChildTickEnv    = "ZKRECIPES_ELECTION_KILL_TICK"    // the servers' tickTime, or 0 if unknown
)

// benchChildTest is the name of the helper below, for -test.run.
const benchChildTest = "TestElectionKillChild"

// TestElectionKillChild is not a test: it is the leader process of
// BenchmarkElectionKill100, and skips unless that benchmark started it
// (with $ZKRECIPES_ELECTION_KILL_CHILD set). It connects to the servers,
// campaigns at the path it is given, prints "LEADER <token> <negotiated
// session timeout in ms> <its node> <its server>" on stdout once it leads,
// then blocks until its stdin closes (the benchmark kills it with SIGKILL
// before; a closed stdin means the benchmark is gone). Before it sends
// anything to a server it prints "SENT <Unix time in ns>", so that the
// benchmark knows when the server last heard from it.
func TestElectionKillChild(t *testing.T) {
	servers := os.Getenv(benchChildEnv)
	if servers == "" {
		t.Skip("helper process of BenchmarkElectionKill100; runs only when re-executed by it")
	}
	timeout, err := time.ParseDuration(os.Getenv(benchChildTimeoutEnv))
	if err != nil {
		t.Fatalf("%s: %v", benchChildTimeoutEnv, err)
	}
	tick, err := time.ParseDuration(os.Getenv(benchChildTickEnv))
	if err != nil {
		t.Fatalf("%s: %v", benchChildTickEnv, err)
	}
	opts := []recipes.Option{
		recipes.WithSessionTimeout(timeout),
		recipes.WithLogger(slog.New(slog.DiscardHandler)),
		recipes.WithDialer(func(network, addr string, d time.Duration) (net.Conn, error) {
			c, err := net.DialTimeout(network, addr, d)
			if err != nil {
				return nil, err
			}
			return benchSentConn{c}, nil
		}),
	}
	if tick > 0 {
		opts = append(opts, recipes.WithServerTickTime(tick))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess, err := recipes.Connect(ctx, strings.Split(servers, ","), opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer sess.Close()
	term, err := election.NewElection(sess, os.Getenv(benchChildPathEnv)).Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	fmt.Printf("LEADER %d %d %s %s\n", int64(term.Token()), sess.Timeout().Milliseconds(), term.Path(), sess.Conn().Server())
	_, _ = io.Copy(io.Discard, os.Stdin) // until killed, or the benchmark is gone
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	_ = term.Release(rctx)
}

// benchSentConn prints "SENT <Unix time in ns>" before each write.
type benchSentConn struct{ net.Conn }

func (c benchSentConn) Write(p []byte) (int, error) {
	fmt.Printf("SENT %d\n", time.Now().UnixNano())
	return c.Conn.Write(p)
}
