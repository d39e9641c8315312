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
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// benchSessionTimeout is the session timeout of every benchmark connection,
// raw or recipes (long enough that pings are rare).
const benchSessionTimeout = 10 * time.Second

// benchContenders is the number of sessions in the contended benchmarks.
const benchContenders = 4

func benchCluster(b *testing.B) *zktest.Cluster {
	b.Helper()
	zkc := zktest.Shared(b, zktest.Config{Servers: 3})
	benchWarmOnce.Do(func() { benchWarm(b, zkc) })
	return zkc
}

var benchWarmOnce sync.Once

// benchWarmup is how long benchWarm exercises the servers.
const benchWarmup = 3 * time.Second

// benchWarm runs the raw loop against every server for benchWarmup before
// the first benchmark, so that no benchmark pays for the JVMs' JIT warm-up.
func benchWarm(b *testing.B, zkc *zktest.Cluster) {
	b.Helper()
	dir := zktest.Root(b)
	var wg sync.WaitGroup
	for _, addr := range append(zkc.Addrs(), zkc.Addrs()...) {
		conn := benchRawConn(b, addr)
		benchMkdirs(b, conn, dir)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			acl := zk.WorldACL(zk.PermAll)
			for end := time.Now().Add(benchWarmup); time.Now().Before(end); {
				p, err := conn.Create(dir+"/_c_"+benchGUID()+"-lock-", nil, zk.FlagEphemeral|zk.FlagSequence, acl)
				if err != nil {
					b.Error(err)
					return
				}
				_, _, _ = conn.Children(dir)
				_, _, _ = conn.Exists(p)
				_ = conn.Delete(p, -1)
			}
		}()
	}
	wg.Wait()
}

// benchServer returns the address every uncontended benchmark connects to:
// a follower (where 2 of 3 clients of a 3-node ensemble are), the same one
// in every benchmark of the run.
func benchServer(b *testing.B, zkc *zktest.Cluster) string {
	b.Helper()
	leader := zkc.WaitLeader(b)
	addrs := zkc.Addrs()
	return addrs[(leader+1)%len(addrs)]
}

type benchDiscard struct{}

func (benchDiscard) Printf(string, ...any) {}

// benchRawConn opens a go-zookeeper connection to addr only and waits for its
// session; b.Cleanup closes it.
func benchRawConn(b *testing.B, addr string) *zk.Conn {
	b.Helper()
	conn, _, err := zk.Connect([]string{addr}, benchSessionTimeout,
		zk.WithLogger(benchDiscard{}),
		zk.WithLogInfo(false),
		zk.WithEventCallback(func(zk.Event) {}), // the event channel never blocks
	)
	if err != nil {
		b.Fatalf("zk.Connect(%s): %v", addr, err)
	}
	b.Cleanup(conn.Close)
	deadline := time.Now().Add(20 * time.Second)
	for conn.State() != zk.StateHasSession {
		if time.Now().After(deadline) {
			b.Fatalf("no session from %s: state %v", addr, conn.State())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return conn
}

// benchSession opens a recipes.Session to addr only; b.Cleanup closes it.
func benchSession(b *testing.B, addr string) *recipes.Session {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := recipes.Connect(ctx, []string{addr},
		recipes.WithSessionTimeout(benchSessionTimeout),
		recipes.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatalf("recipes.Connect(%s): %v", addr, err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// benchMkdirs creates p and its ancestors as persistent nodes.
func benchMkdirs(b *testing.B, conn *zk.Conn, p string) {
	b.Helper()
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			_, err := conn.Create(p[:i], nil, 0, zk.WorldACL(zk.PermAll))
			if err != nil && !errors.Is(err, zk.ErrNodeExists) {
				b.Fatalf("create %s: %v", p[:i], err)
			}
		}
	}
}

func benchCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchMeasure runs loop with the timer and the CPU clock started, then reports
// rate (per second, as unit) and cpu-ns/op.
func benchMeasure(b *testing.B, unit string, loop func()) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := benchCPUTime()
	loop()
	cpu := benchCPUTime() - cpu0
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, unit)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func benchGUID() string {
	var g [16]byte
	_, _ = rand.Read(g[:])
	return hex.EncodeToString(g[:])
}

// BenchmarkRawLoop is the baseline: what an uncontended lock costs at the
// least with go-zookeeper: create a protected ephemeral-sequential node,
// list the parent (to see that we are first), delete the node.
func BenchmarkRawLoop(b *testing.B) {
	zkc := benchCluster(b)
	conn := benchRawConn(b, benchServer(b, zkc))
	dir := zktest.Root(b)
	benchMkdirs(b, conn, dir)
	acl := zk.WorldACL(zk.PermAll)
	benchMeasure(b, "ops/s", func() {
		for range b.N {
			p, err := conn.Create(dir+"/_c_"+benchGUID()+"-lock-", nil, zk.FlagEphemeral|zk.FlagSequence, acl)
			if err != nil {
				b.Fatal(err)
			}
			children, _, err := conn.Children(dir)
			if err != nil {
				b.Fatal(err)
			}
			if len(children) != 1 || !strings.HasSuffix(p, "/"+children[0]) {
				b.Fatalf("not alone: %s among %v", p, children)
			}
			if err := conn.Delete(p, -1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkZkLock is go-zookeeper's zk.Lock, uncontended: Lock + Unlock.
func BenchmarkZkLock(b *testing.B) {
	zkc := benchCluster(b)
	conn := benchRawConn(b, benchServer(b, zkc))
	l := zk.NewLock(conn, zktest.Root(b), zk.WorldACL(zk.PermAll))
	benchMeasure(b, "ops/s", func() {
		for range b.N {
			if err := l.Lock(); err != nil {
				b.Fatal(err)
			}
			if err := l.Unlock(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMutex is our Mutex, uncontended: Acquire + Release with a
// context that is never done (no deadline).
func BenchmarkMutex(b *testing.B) {
	benchMutex(b, context.Background())
}

// BenchmarkMutexDeadline is BenchmarkMutex with a context that has a
// deadline, as most callers pass: every ZooKeeper call then runs in its own
// goroutine so the caller can stop waiting (recipes.Call).
func BenchmarkMutexDeadline(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	benchMutex(b, ctx)
}

func benchMutex(b *testing.B, ctx context.Context) {
	zkc := benchCluster(b)
	sess := benchSession(b, benchServer(b, zkc))
	m := lock.NewMutex(sess, zktest.Root(b))
	benchMeasure(b, "ops/s", func() {
		for range b.N {
			l, err := m.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Release(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
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
func BenchmarkContendedZkLock(b *testing.B) {
	zkc := benchCluster(b)
	path := zktest.Root(b)
	benchLockers := make([]benchLocker, benchContenders)
	for i := range benchLockers {
		conn := benchRawConn(b, zkc.Addrs()[i%len(zkc.Addrs())])
		benchLockers[i] = benchZkLocker{zk.NewLock(conn, path, zk.WorldACL(zk.PermAll))}
	}
	benchContended(b, benchLockers)
}

// BenchmarkContendedMutex: 4 sessions loop Mutex Acquire/Release on one
// path until b.N acquisitions (hand-offs) are done.
func BenchmarkContendedMutex(b *testing.B) {
	zkc := benchCluster(b)
	path := zktest.Root(b)
	benchLockers := make([]benchLocker, benchContenders)
	for i := range benchLockers {
		sess := benchSession(b, zkc.Addrs()[i%len(zkc.Addrs())])
		benchLockers[i] = &benchMutexLocker{m: lock.NewMutex(sess, path)}
	}
	benchContended(b, benchLockers)
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
func benchLoop(b *testing.B, lockers []benchLocker, unit string, exclusive bool) {
	benchMeasure(b, unit, func() {
		var (
			next    atomic.Int64 // acquisitions started
			holders atomic.Int32 // mutual exclusion check
			wg      sync.WaitGroup
			failed  atomic.Bool
		)
		for _, l := range lockers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !failed.Load() && next.Add(1) <= int64(b.N) {
					if err := l.lock(); err != nil {
						failed.Store(true)
						b.Error(err)
						return
					}
					if exclusive {
						if n := holders.Add(1); n != 1 {
							failed.Store(true)
							b.Errorf("%d holders at once", n)
						}
						holders.Add(-1)
					}
					if err := l.unlock(); err != nil {
						failed.Store(true)
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

// BenchmarkContended16ZkLock and BenchmarkContended16Mutex are the
// contended pair with 16 sessions on one lock.
func BenchmarkContended16ZkLock(b *testing.B) {
	zkc := benchCluster(b)
	path := zktest.Root(b)
	lockers := make([]benchLocker, 16)
	for i := range lockers {
		conn := benchRawConn(b, zkc.Addrs()[i%len(zkc.Addrs())])
		lockers[i] = benchZkLocker{zk.NewLock(conn, path, zk.WorldACL(zk.PermAll))}
	}
	benchContended(b, lockers)
}

func BenchmarkContended16Mutex(b *testing.B) {
	zkc := benchCluster(b)
	path := zktest.Root(b)
	lockers := make([]benchLocker, 16)
	for i := range lockers {
		lockers[i] = &benchMutexLocker{m: lock.NewMutex(benchSession(b, zkc.Addrs()[i%len(zkc.Addrs())]), path)}
	}
	benchContended(b, lockers)
}

// BenchmarkManyLocksZkLock and BenchmarkManyLocksMutex: one connection (one
// session), G goroutines, each looping acquire/release on a lock of its
// own, until b.N acquisitions in all: the client's per-operation cost under
// concurrency (goroutine hops, locks, allocations) on a shared connection.
func BenchmarkManyLocksZkLock(b *testing.B) {
	for _, g := range []int{32, 256} {
		b.Run(fmt.Sprintf("G=%d", g), func(b *testing.B) {
			zkc := benchCluster(b)
			conn := benchRawConn(b, benchServer(b, zkc))
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
			zkc := benchCluster(b)
			sess := benchSession(b, benchServer(b, zkc))
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
