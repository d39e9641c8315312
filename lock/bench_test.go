package lock_test

// Benchmarks of the lock recipe against a raw go-zookeeper loop and
// go-zookeeper's own zk.Lock, on one 3-node ensemble shared by every
// benchmark of the run (zktest.Shared starts it lazily on first use).
//
//	go test -run '^$' -bench . -benchtime 3s -count 3 ./lock/
//
// To compare like with like, every uncontended benchmark connects to the
// same follower, and the contended ones spread their four sessions over
// the servers in the same way (session i on server i%3). Every benchmark
// reports, besides ns/op:
//
//   - ops/s (or hand-offs/s for the contended ones): b.N / elapsed time;
//   - cpu-ns/op: user+sys CPU of this process (the client: the servers are
//     separate JVM processes) per operation, from getrusage(RUSAGE_SELF).
//
// docs/PERFORMANCE.md has the results and the targets.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/benchkit"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// benchContenders is the number of sessions in the contended benchmarks.
const benchContenders = 4

// benchSession opens a recipes.Session to addr only, with
// benchkit.SessionOptions; b.Cleanup closes it.
func benchSession(b *testing.B, zkc *zktest.Cluster, addr string) *recipes.Session {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := recipes.Connect(ctx, []string{addr}, benchkit.SessionOptions(zkc, benchkit.SessionTimeout)...)
	if err != nil {
		b.Fatalf("recipes.Connect(%s): %v", addr, err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkRawLoop is the baseline: what an uncontended lock costs at the
// least with go-zookeeper: create a protected ephemeral-sequential node,
// list the parent (to see that we are first), delete the node. It also
// reports each request's latency percentiles (create-p50-ms, ...): where
// the time of an acquisition goes.
func BenchmarkRawLoop(b *testing.B) {
	zkc := benchkit.Cluster(b)
	conn := benchkit.RawConn(b, benchkit.Follower(b, zkc))
	dir := zktest.Root(b)
	zktest.Mkdirs(b, conn, dir)
	acl := zk.WorldACL(zk.PermAll)
	var create, list, del benchkit.Latencies
	benchkit.Measure(b, "ops/s", func() {
		for range b.N {
			t0 := time.Now()
			p, err := conn.Create(dir+"/_c_"+benchkit.GUID()+"-lock-", nil, zk.FlagEphemeral|zk.FlagSequence, acl)
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			children, _, err := conn.Children(dir)
			if err != nil {
				b.Fatal(err)
			}
			if len(children) != 1 || !strings.HasSuffix(p, "/"+children[0]) {
				b.Fatalf("not alone: %s among %v", p, children)
			}
			t2 := time.Now()
			if err := conn.Delete(p, -1); err != nil {
				b.Fatal(err)
			}
			create.Add(t1.Sub(t0))
			list.Add(t2.Sub(t1))
			del.Add(time.Since(t2))
		}
	})
	// Where the time of an acquire+release goes, request by request.
	create.Report(b, "create-")
	list.Report(b, "children-")
	del.Report(b, "delete-")
}

// BenchmarkZkLock is go-zookeeper's zk.Lock, uncontended: Lock + Unlock.
func BenchmarkZkLock(b *testing.B) {
	zkc := benchkit.Cluster(b)
	conn := benchkit.RawConn(b, benchkit.Follower(b, zkc))
	l := zk.NewLock(conn, zktest.Root(b), zk.WorldACL(zk.PermAll))
	lat := new(benchkit.Latencies)
	benchkit.Measure(b, "ops/s", func() {
		for range b.N {
			t0 := time.Now()
			if err := l.Lock(); err != nil {
				b.Fatal(err)
			}
			if err := l.Unlock(); err != nil {
				b.Fatal(err)
			}
			lat.Add(time.Since(t0))
		}
	})
	lat.Report(b, "")
}

// BenchmarkMutex is our Mutex, uncontended: Acquire + Release with a
// context that is never done (no deadline).
func BenchmarkMutex(b *testing.B) {
	benchMutex(b, context.Background())
}

func benchMutex(b *testing.B, ctx context.Context) {
	zkc := benchkit.Cluster(b)
	sess := benchSession(b, zkc, benchkit.Follower(b, zkc))
	m := lock.NewMutex(sess, zktest.Root(b))
	lat := new(benchkit.Latencies)
	benchkit.Measure(b, "ops/s", func() {
		for range b.N {
			t0 := time.Now()
			l, err := m.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Release(ctx); err != nil {
				b.Fatal(err)
			}
			lat.Add(time.Since(t0))
		}
	})
	lat.Report(b, "")
}

// benchLocker is one contender of a contended benchmark.
type benchLocker interface {
	lock() error
	unlock() error
}

type benchZkLocker struct{ l *zk.Lock }

func (z benchZkLocker) lock() error   { return z.l.Lock() }
func (z benchZkLocker) unlock() error { return z.l.Unlock() }

type benchMutexLocker struct {
	m     *lock.Mutex
	lease *lock.Lease
}

func (m *benchMutexLocker) lock() (err error) {
	m.lease, err = m.m.Acquire(context.Background())
	return err
}

func (m *benchMutexLocker) unlock() error { return m.lease.Release(context.Background()) }

// BenchmarkContendedZkLock: 4 sessions loop zk.Lock Lock/Unlock on one path
// until b.N acquisitions (hand-offs) are done.
func BenchmarkContendedZkLock(b *testing.B) { benchContendedZkLock(b, benchContenders) }

// BenchmarkContendedMutex: 4 sessions loop Mutex Acquire/Release on one
// path until b.N acquisitions (hand-offs) are done.
func BenchmarkContendedMutex(b *testing.B) { benchContendedMutex(b, benchContenders) }

// BenchmarkContended16ZkLock and BenchmarkContended16Mutex are the
// contended pair with 16 sessions on one lock.
func BenchmarkContended16ZkLock(b *testing.B) { benchContendedZkLock(b, 16) }

func BenchmarkContended16Mutex(b *testing.B) { benchContendedMutex(b, 16) }

// benchContendedZkLock runs n connections, connection i on server i%3, each
// looping zk.Lock Lock/Unlock on one path.
func benchContendedZkLock(b *testing.B, n int) {
	zkc := benchkit.Cluster(b)
	path := zktest.Root(b)
	lockers := make([]benchLocker, n)
	for i, conn := range benchkit.RawConns(b, zkc.Addrs(), n) {
		lockers[i] = benchZkLocker{zk.NewLock(conn, path, zk.WorldACL(zk.PermAll))}
	}
	benchContended(b, lockers)
}

// benchContendedMutex runs n sessions, session i on server i%3, each
// looping Mutex Acquire/Release on one path.
func benchContendedMutex(b *testing.B, n int) {
	zkc := benchkit.Cluster(b)
	path := zktest.Root(b)
	lockers := make([]benchLocker, n)
	for i := range lockers {
		sess := benchSession(b, zkc, zkc.Addrs()[i%len(zkc.Addrs())])
		lockers[i] = &benchMutexLocker{m: lock.NewMutex(sess, path)}
	}
	benchContended(b, lockers)
}

func benchContended(b *testing.B, benchLockers []benchLocker) {
	// Create the lock's parent outside the benchMeasurement.
	benchWarmLocker(b, benchLockers[0])
	benchLoop(b, benchLockers, "hand-offs/s", true)
}

// benchWarmLocker takes and gives back l once, creating its lock's parent.
func benchWarmLocker(b *testing.B, l benchLocker) {
	if err := l.lock(); err != nil {
		b.Fatal(err)
	}
	if err := l.unlock(); err != nil {
		b.Fatal(err)
	}
}

// benchLoop runs one goroutine per locker, looping lock/unlock until b.N
// acquisitions in all; exclusive lockers (one lock) are checked for mutual
// exclusion on every acquisition.
//
// Exclusive lockers also report the hand-off latency, from the start of a
// holder's unlock to the return of the next holder's lock, as handoff-p50-ms
// and handoff-p99-ms. Non-exclusive ones report the latency of lock plus
// unlock, as p50-ms and p99-ms.
func benchLoop(b *testing.B, lockers []benchLocker, unit string, exclusive bool) {
	lat := new(benchkit.Latencies)
	benchkit.Measure(b, unit, func() {
		if err := runLockers(lockers, int64(b.N), exclusive, lat); err != nil {
			b.Error(err)
		}
	})
	if exclusive {
		lat.Report(b, "handoff-")
	} else {
		lat.Report(b, "")
	}
}

// runLockers runs one goroutine per locker, looping lock/unlock until n
// acquisitions in all, and adds to lat the latencies benchLoop describes.
// Exclusive lockers are checked for mutual exclusion on every acquisition.
func runLockers(lockers []benchLocker, n int64, exclusive bool, lat *benchkit.Latencies) error {
	var (
		next     atomic.Int64 // acquisitions started
		holders  atomic.Int32 // mutual exclusion check
		released atomic.Int64 // when the last unlock began (exclusive), ns since start
		wg       sync.WaitGroup
		failed   atomic.Bool
		mu       sync.Mutex
		errs     []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		failed.Store(true)
	}
	start := time.Now()
	for _, l := range lockers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() && next.Add(1) <= n {
				t0 := time.Since(start)
				if err := l.lock(); err != nil {
					fail(err)
					return
				}
				if exclusive {
					if k := holders.Add(1); k != 1 {
						fail(fmt.Errorf("%d holders at once", k))
					}
					if r := released.Load(); r > 0 {
						lat.Add(time.Since(start) - time.Duration(r))
					}
					holders.Add(-1)
					released.Store(int64(time.Since(start)))
				}
				if err := l.unlock(); err != nil {
					fail(err)
					return
				}
				if !exclusive {
					lat.Add(time.Since(start) - t0)
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// BenchmarkManyLocksZkLock and BenchmarkManyLocksMutex: one connection (one
// session), G goroutines, each looping acquire/release on a lock of its
// own, until b.N acquisitions in all: the client's per-operation cost under
// concurrency (goroutine hops, locks, allocations) on a shared connection.
func BenchmarkManyLocksZkLock(b *testing.B) {
	for _, g := range []int{32, 256} {
		b.Run(fmt.Sprintf("G=%d", g), func(b *testing.B) {
			zkc := benchkit.Cluster(b)
			conn := benchkit.RawConn(b, benchkit.Follower(b, zkc))
			root := zktest.Root(b)
			benchMany(b, g, func(i int) benchLocker {
				return benchZkLocker{zk.NewLock(conn, fmt.Sprintf("%s/l%d", root, i), zk.WorldACL(zk.PermAll))}
			})
		})
	}
}

func BenchmarkManyLocksMutex(b *testing.B) {
	for _, g := range []int{32, 256} {
		b.Run(fmt.Sprintf("G=%d", g), func(b *testing.B) {
			zkc := benchkit.Cluster(b)
			sess := benchSession(b, zkc, benchkit.Follower(b, zkc))
			root := zktest.Root(b)
			benchMany(b, g, func(i int) benchLocker {
				return &benchMutexLocker{m: lock.NewMutex(sess, fmt.Sprintf("%s/l%d", root, i))}
			})
		})
	}
}

func benchMany(b *testing.B, g int, mk func(i int) benchLocker) {
	lockers := make([]benchLocker, g)
	for i := range lockers {
		lockers[i] = mk(i)
		benchWarmLocker(b, lockers[i]) // each lock's parent, outside the measurement
	}
	benchLoop(b, lockers, "ops/s", false)
}

// BenchmarkMutexDeadline is BenchmarkMutex with a context that has a
// deadline, as most callers pass: ZooKeeper calls then run in goroutines of
// the session's so the caller can stop waiting (core.Call; the create and
// the list after it share one). It comes last in
// this file, so that it runs after every benchmark it is not paired with:
// the others run in the same order in zk.Lock's process and in ours
// (scripts/bench.sh), and a benchmark that runs later in a process meets
// servers in another state.
func BenchmarkMutexDeadline(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	benchMutex(b, ctx)
}
