package interop_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

const (
	rounds = 6                     // per foreign worker
	hold   = 60 * time.Millisecond // how long each holder acts
	finish = 90 * time.Second      // bound on a scenario's workers
)

// acquireFunc takes what a Go holder holds: a lease or a term.
type acquireFunc func(ctx context.Context, sess *recipes.Session) (recipes.Fenced, string, error)

// goHolders runs n holders of ours, each on its own session, reporting to
// ref like the foreign workers do, round after round until the returned
// stop function is called (it waits for them). It returns the sessions too
// (to expire one).
func goHolders(t *testing.T, ref *referee, zkc *zktest.Cluster, who string, write bool, n int, acquire acquireFunc) ([]*recipes.Session, func()) {
	ctx := testCtx(t)
	stop := make(chan struct{})
	var sessions []*recipes.Session
	var wg sync.WaitGroup
	for i := range n {
		sess := zkc.Session(t)
		sessions = append(sessions, sess)
		name := fmt.Sprintf("%s#%d", who, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				h, node, err := acquire(ctx, sess)
				if err != nil {
					if sess.Err() == nil && ctx.Err() == nil {
						t.Errorf("%s: %v", name, err)
					}
					return
				}
				ref.note(event{who: name, kind: "enter", write: write, tok: int64(h.Token()), node: node, at: time.Now()})
				select {
				case <-time.After(hold + time.Duration(rand.IntN(20))*time.Millisecond):
				case <-h.Done(): // lost: it stops acting at once
				}
				ref.note(event{who: name, kind: "exit", at: time.Now()})
				h.Release(context.WithoutCancel(ctx))
				if sess.Err() != nil {
					return
				}
			}
		}()
	}
	return sessions, func() {
		close(stop)
		wg.Wait()
	}
}

// ready waits until every worker has its session.
func ready(t *testing.T, ws ...*worker) {
	t.Helper()
	for _, w := range ws {
		select {
		case <-w.ready:
		case <-w.exited:
			t.Fatalf("%s exited before it connected: %v", w.who, w.err)
		case <-time.After(finish):
			t.Fatalf("%s did not connect within %v", w.who, finish)
		}
	}
}

func mutex(path string, opts ...lock.Option) acquireFunc {
	return func(ctx context.Context, sess *recipes.Session) (recipes.Fenced, string, error) {
		l, err := lock.NewMutex(sess, path, opts...).Acquire(ctx)
		if err != nil {
			return nil, "", err
		}
		return l, l.Path(), nil
	}
}

func rwLock(path string, write bool, opts ...lock.Option) acquireFunc {
	return func(ctx context.Context, sess *recipes.Session) (recipes.Fenced, string, error) {
		rw := lock.NewRWMutex(sess, path, opts...)
		var l *lock.Lease
		var err error
		if write {
			l, err = rw.Acquire(ctx)
		} else {
			l, err = rw.AcquireRead(ctx)
		}
		if err != nil {
			return nil, "", err
		}
		return l, l.Path(), nil
	}
}

func elect(path string, opts ...election.Option) acquireFunc {
	return func(ctx context.Context, sess *recipes.Session) (recipes.Fenced, string, error) {
		term, err := election.NewElection(sess, path, opts...).Acquire(ctx)
		if err != nil {
			return nil, "", err
		}
		return term, term.Path(), nil
	}
}

// faults kills foreign worker victim -9 while it holds, and expires the
// session of one of our holders while it holds.
func faults(t *testing.T, ref *referee, zkc *zktest.Cluster, victim *worker, ours []*recipes.Session, oursWho string) {
	t.Helper()
	ref.waitEnter(t, victim.who, 30*time.Second)
	victim.kill()
	ref.waitEnter(t, oursWho+"#0", 30*time.Second)
	ref.note(event{who: oursWho + "#0", kind: "fault", at: time.Now()})
	zkc.Expire(t, ours[0])
}

// ours is a group of our holders in a scenario.
type ours struct {
	who     string
	write   bool
	n       int
	acquire acquireFunc
}

// scenario runs foreign workers (start returns the one to kill and one more)
// and our holders on path: the foreign victim is killed -9 and the first
// group's first holder's session expired, both while they hold; then it
// checks every holder's story and that each of kinds held the lock.
func scenario(t *testing.T, path string, start func(ref *referee, addrs []string) (victim, other *worker), groups []ours, kinds ...string) {
	t.Helper()
	zkc := zktest.Shared(t, zktest.Config{})
	ref := newReferee(t, zkc.Conn(t))
	victim, other := start(ref, zkc.Addrs())
	ready(t, victim, other)
	var first []*recipes.Session
	var waits []func()
	for i, g := range groups {
		sessions, wait := goHolders(t, ref, zkc, g.who, g.write, g.n, g.acquire)
		if i == 0 {
			first = sessions
		}
		waits = append(waits, wait)
	}
	faults(t, ref, zkc, victim, first, groups[0].who)
	other.wait(t, finish)
	for _, w := range waits {
		w()
	}
	ref.verdict(kinds...)
}

// Our Mutex, go-zookeeper's names (the same as Curator's) and Curator's
// InterProcessMutex on one path: Curator orders contenders by the text after
// "lock-", which our names share.
func TestMutexWithCurator(t *testing.T) {
	needCurator(t)
	path := zktest.Root(t) + "/lock"
	scenario(t, path, func(ref *referee, addrs []string) (*worker, *worker) {
		return startCurator(t, ref, "curator#0", true, addrs, path, "mutex", rounds, hold),
			startCurator(t, ref, "curator#1", true, addrs, path, "mutex", rounds, hold)
	}, []ours{{"zkrecipes", true, 2, mutex(path)}}, "zkrecipes", "curator")
}

// Our Mutex and kazoo's Lock given extra_lock_patterns=["-lock-"]: kazoo
// counts our nodes, we count kazoo's ("__lock__").
func TestMutexWithKazooPatterns(t *testing.T) {
	needKazoo(t)
	path := zktest.Root(t) + "/lock"
	scenario(t, path, func(ref *referee, addrs []string) (*worker, *worker) {
		return startKazoo(t, ref, "kazoo#0", true, addrs, path, "lock", rounds, hold, "-lock-"),
			startKazoo(t, ref, "kazoo#1", true, addrs, path, "lock", rounds, hold, "-lock-")
	}, []ours{{"zkrecipes", true, 2, mutex(path)}}, "zkrecipes", "kazoo")
}

// Our Mutex WithKazooNames and kazoo's Lock as it comes (no patterns): our
// nodes look like kazoo's.
func TestMutexWithKazooNames(t *testing.T) {
	needKazoo(t)
	path := zktest.Root(t) + "/lock"
	scenario(t, path, func(ref *referee, addrs []string) (*worker, *worker) {
		return startKazoo(t, ref, "kazoo#0", true, addrs, path, "lock", rounds, hold),
			startKazoo(t, ref, "kazoo#1", true, addrs, path, "lock", rounds, hold)
	}, []ours{{"zkrecipes", true, 2, mutex(path, lock.WithKazooNames())}}, "zkrecipes", "kazoo")
}

// The pair docs/INTEROP.md calls unsafe is: our default Mutex next to a
// kazoo Lock given no patterns, which does not see our nodes. The referee
// must catch two holders at once (this is also what shows it can).
func TestRefereeCatchesKazooIgnoringUs(t *testing.T) {
	needKazoo(t)
	zkc := zktest.Shared(t, zktest.Config{})
	path := zktest.Root(t) + "/lock"
	ref := newReferee(t, zkc.Conn(t))
	k := startKazoo(t, ref, "kazoo#0", true, zkc.Addrs(), path, "lock", rounds, hold)
	ready(t, k)
	_, wait := goHolders(t, ref, zkc, "zkrecipes", true, 2, mutex(path))
	k.wait(t, finish)
	wait()
	bad := ref.violations()
	t.Logf("%d violations, for example %q", len(bad), bad[:min(1, len(bad))])
	if len(bad) == 0 {
		t.Fatal("a kazoo Lock that ignores our nodes never held with one of ours: the referee or the scenario is blind")
	}
}

// Our RWMutex and Curator's InterProcessReadWriteLock: the same node names
// ("__READ__", "__WRIT__"), one order.
func TestRWMutexWithCurator(t *testing.T) {
	needCurator(t)
	path := zktest.Root(t) + "/rw"
	scenario(t, path, func(ref *referee, addrs []string) (*worker, *worker) {
		return startCurator(t, ref, "curator-writer#0", true, addrs, path, "write", rounds, hold),
			startCurator(t, ref, "curator-reader#0", false, addrs, path, "read", rounds, hold)
	}, []ours{{"zkrecipes-writer", true, 1, rwLock(path, true)}, {"zkrecipes-reader", false, 2, rwLock(path, false)}},
		"zkrecipes-reader", "curator-reader", "curator-writer")
}

// Our RWMutex and kazoo's ReadLock and WriteLock, told our names: a kazoo
// reader waits for our writers ("__WRIT__"), a kazoo writer for everyone.
// kazoo 2.8's ReadLock must also be given its own name ("__rlock__"):
// without it a reader does not find itself among the contenders and waits
// for the last writer of the whole queue, even one that came after it,
// which waits for the reader (a deadlock of kazoo's own, with or without
// us). With it, kazoo readers also wait for each other: safe, less shared.
func TestRWMutexWithKazoo(t *testing.T) {
	needKazoo(t)
	path := zktest.Root(t) + "/rw"
	scenario(t, path, func(ref *referee, addrs []string) (*worker, *worker) {
		return startKazoo(t, ref, "kazoo-writer#0", true, addrs, path, "write", rounds, hold, "__WRIT__", "__READ__"),
			startKazoo(t, ref, "kazoo-reader#0", false, addrs, path, "read", rounds, hold, "__WRIT__", "__rlock__")
	}, []ours{{"zkrecipes-writer", true, 1, rwLock(path, true)}, {"zkrecipes-reader", false, 2, rwLock(path, false)}},
		"zkrecipes-reader", "kazoo-reader", "kazoo-writer")
}

// Our election and Curator's LeaderLatch: the same "latch-" names.
func TestElectionWithCuratorLeaderLatch(t *testing.T) {
	needCurator(t)
	path := zktest.Root(t) + "/leader"
	scenario(t, path, func(ref *referee, addrs []string) (*worker, *worker) {
		return startCurator(t, ref, "curator#0", true, addrs, path, "latch", rounds, hold),
			startCurator(t, ref, "curator#1", true, addrs, path, "latch", rounds, hold)
	}, []ours{{"zkrecipes", true, 2, elect(path)}}, "zkrecipes", "curator")
}

// Our election WithKazooNames and kazoo's Election (a kazoo Lock, which
// recognises only its own names).
func TestElectionWithKazoo(t *testing.T) {
	needKazoo(t)
	path := zktest.Root(t) + "/leader"
	scenario(t, path, func(ref *referee, addrs []string) (*worker, *worker) {
		return startKazoo(t, ref, "kazoo#0", true, addrs, path, "election", rounds, hold),
			startKazoo(t, ref, "kazoo#1", true, addrs, path, "election", rounds, hold)
	}, []ours{{"zkrecipes", true, 2, elect(path, election.WithKazooNames())}}, "zkrecipes", "kazoo")
}
