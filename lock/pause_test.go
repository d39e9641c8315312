package lock_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// pausedHolderEnv, when set, makes TestPausedHolderChild act as the child
// process of TestResumedHolderSeesLossAtOnce: it holds the lock at the path
// the variable names, on the servers in ZK_SERVERS.
const pausedHolderEnv = "ZKRECIPES_TEST_PAUSED_HOLDER"

// A holder frozen (SIGSTOP) past its session's expiry must see the loss in
// the very first check it makes after SIGCONT: Lease.Err and
// Lease.Context().Err check the local deadline themselves, before any of
// the session's goroutines has had a chance to run. The child runs with
// GOMAXPROCS=1 and checks in a busy loop, so after the resume its loop
// goroutine keeps the only processor until the scheduler preempts it.
func TestResumedHolderSeesLossAtOnce(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	obs := zkc.Conn(t)

	cmd := exec.Command(os.Args[0], "-test.run=^TestPausedHolderChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), pausedHolderEnv+"="+root, "ZK_SERVERS="+strings.Join(zkc.Addrs(), ","), "GOMAXPROCS=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the child exited before %s", what)
			}
			return l
		case <-time.After(patience):
			t.Fatalf("the child did not say %s", what)
		}
		return ""
	}
	node := strings.TrimPrefix(next("held"), "held ")

	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The server expires the frozen holder's session and deletes its node.
	zktest.WaitUntil(t, patience, "the server expired the frozen holder's session", func() bool {
		ok, _, err := obs.Exists(node)
		return err == nil && !ok
	})
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	got := next("what it saw after the resume")
	if !strings.HasPrefix(got, "lost ") {
		t.Fatalf("the first check after the resume said %q: the lease looked held after the server had expired its session", got)
	}
	t.Logf("first check after the resume: %s", got)
}

// TestPausedHolderChild is the child process of
// TestResumedHolderSeesLossAtOnce; it does nothing in a normal run.
func TestPausedHolderChild(t *testing.T) {
	root := os.Getenv(pausedHolderEnv)
	if root == "" {
		t.Skip("only run as the child of TestResumedHolderSeesLossAtOnce")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess, err := recipes.Connect(ctx, strings.Split(os.Getenv("ZK_SERVERS"), ","),
		recipes.WithSessionTimeout(time.Second), recipes.WithLossPolicy(recipes.LoseOnSessionEnd))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	l, err := lock.NewMutex(sess, root).Acquire(ctx)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	end := time.Now() // before saying "held": the pause may come right after
	fmt.Println("held", sess.Path(l.Path()))
	// Check in a busy loop. A gap longer than the session timeout between
	// one check's end and the next one's start is the pause, and the check
	// right after it is the one that matters; if the pause fell inside a
	// check, the next check is the first made wholly after it.
	next := false
	for {
		start := time.Now()
		lerr, cerr := l.Err(), l.Context().Err()
		stop := time.Now()
		if paused := start.Sub(end); paused > sess.Timeout() || next {
			if lerr == nil || cerr == nil {
				fmt.Printf("held (Err %v, Context().Err %v) after a pause of %v\n", lerr, cerr, paused)
			} else {
				fmt.Printf("lost %v (after a pause of %v)\n", lerr, paused)
			}
			os.Exit(0)
		}
		next = stop.Sub(start) > sess.Timeout()
		end = stop
	}
}
