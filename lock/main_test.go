package lock_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/goleak"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// TestMain runs the tests (or skips them without ZooKeeper), stops
// zktest's shared servers, and only then looks for leaked goroutines, so
// that nothing process-wide is left to ignore.
func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Wrap(m)) }

// patience bounds every wait for something that should happen promptly.
const patience = 10 * time.Second

// testCtx is cancelled when the test ends or after a minute.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// shared returns the package's shared standalone server.
func shared(t *testing.T) *zktest.Cluster { return zktest.Shared(t, zktest.Config{}) }

// children returns the children of path as the server sees them, sorted
// (nil if path does not exist).
func children(t *testing.T, obs *zk.Conn, path string) []string {
	t.Helper()
	ch, _, err := obs.Children(path)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		t.Fatalf("children of %s: %v", path, err)
	}
	slices.Sort(ch)
	return ch
}

// contenders is children without the lock-delay marker.
func contenders(t *testing.T, obs *zk.Conn, path string) []string {
	t.Helper()
	return slices.DeleteFunc(children(t, obs, path), func(c string) bool { return c == lock.DelayNode })
}

// nodesOf returns the full paths of the children of path owned by session
// owner.
func nodesOf(t *testing.T, obs *zk.Conn, path string, owner int64) []string {
	t.Helper()
	var out []string
	for _, c := range children(t, obs, path) {
		ok, st, err := obs.Exists(path + "/" + c)
		if err != nil {
			t.Fatalf("exists %s/%s: %v", path, c, err)
		}
		if ok && st.EphemeralOwner == owner {
			out = append(out, path+"/"+c)
		}
	}
	return out
}

// waitQueued waits until the lock at m has n contenders, the last of them
// owned by owner.
func waitQueued(t *testing.T, m *lock.Mutex, n int, owner int64) {
	t.Helper()
	zktest.WaitUntil(t, patience, "contender "+m.Path()+" is queued", func() bool {
		cs, err := m.Contenders(t.Context())
		if err != nil {
			t.Fatalf("contenders: %v", err)
		}
		return len(cs) == n && cs[n-1].Session == owner
	})
}

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

type acquired struct {
	l   *lock.Lease
	err error
	at  time.Time
}

// acquireAsync runs m.Acquire(ctx) in a goroutine and delivers its result.
func acquireAsync(ctx context.Context, m *lock.Mutex) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		l, err := m.Acquire(ctx)
		ch <- acquired{l, err, time.Now()}
	}()
	return ch
}

// result waits for an acquireAsync result.
func result(t *testing.T, ch <-chan acquired, d time.Duration, what string) acquired {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("%s: Acquire did not return within %v", what, d)
		return acquired{}
	}
}

// notYet fails the test if the acquireAsync result is already there.
func notYet(t *testing.T, ch <-chan acquired, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s: Acquire returned early: lease %v, err %v", what, r.l != nil, r.err)
	default:
	}
}

// release releases l and checks it ends as released.
func release(t *testing.T, l *lock.Lease) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := l.Release(ctx); err != nil {
		t.Fatalf("release %s: %v", l.Path(), err)
	}
}

// waitState waits for the next event in state st on events.
func waitState(t *testing.T, events <-chan recipes.StateEvent, st recipes.State, d time.Duration) recipes.StateEvent {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("session events ended while waiting for %v", st)
			}
			if ev.State == st {
				return ev
			}
			if ev.State == recipes.StateLost {
				t.Fatalf("session lost (%v) while waiting for %v", ev.Err, st)
			}
		case <-timeout:
			t.Fatalf("session not %v within %v", st, d)
		}
	}
}

func isContender(name string) bool { return strings.Contains(name, "-"+lock.Kind) }
