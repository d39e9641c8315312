package zktest

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// WaitUntil polls cond every 10 ms until it holds, failing the test after
// d with what in the message. It is for waiting on state that no channel
// announces (a server's view of the nodes, say), not for ordering: cond
// runs on the test's goroutine, so it may call t.Fatal itself.
func WaitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
		time.Sleep(10 * time.Millisecond) // polling state, not ordering
	}
}

// ClosedWithin fails the test unless ch is closed within d.
func ClosedWithin(t testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
	}
}

// Wrap wraps a package's *testing.M for its TestMain, under a leak check
// if it has one:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Wrap(m)) }
//
// Its Run skips the whole package, saying why, when no ZooKeeper is
// installed (see Available), unless ZKTEST_REQUIRE=1 makes that a failure.
// After the tests it runs after (if any: stopping a database the tests
// started, say) and stops the shared servers (Cleanup), keeping their logs
// when a test failed, so a leak check that runs after Run sees none of
// their goroutines.
func Wrap(m *testing.M, after ...func()) Wrapped { return Wrapped{m, after} }

// Wrapped is a *testing.M wrapped by Wrap.
type Wrapped struct {
	m     *testing.M
	after []func()
}

// Run runs the tests, or skips them as Wrap says.
func (w Wrapped) Run() int {
	if err := Available(); err != nil && os.Getenv("ZKTEST_REQUIRE") != "1" {
		fmt.Println("skipping package: no ZooKeeper:", err)
		return 0
	}
	code := w.m.Run()
	for _, f := range w.after {
		f()
	}
	if code != 0 {
		shared.mu.Lock()
		shared.failed = true
		shared.mu.Unlock()
	}
	Cleanup()
	return code
}
