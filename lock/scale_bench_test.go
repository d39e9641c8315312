package lock_test

// Scale benchmarks of the lock recipe beside go-zookeeper (its zk.Lock, or
// a raw loop), on the same shared 3-node ensemble (fsync on) as
// bench_test.go:
//
//	go test -run '^$' -bench 'Waiters1000|Leases10000' -benchtime 2x ./lock/
//
// One iteration of each is big (a drain of 1,000 hand-offs, or 10,000
// leases taken and given back), so run them with -benchtime Nx. Their
// sessions are opened, and their lock parents created, before the timer.
// Every figure they report is per hand-off or per lease, as its unit says;
// ns/op, B/op and allocs/op are per iteration.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
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

const (
	// scaleWaiters is the number of waiters queued behind the holder in
	// the Waiters1000 benchmarks, each on a session of its own.
	scaleWaiters = 1000
	// scaleLeases is the number of leases held at once in the
	// Leases10000 benchmarks.
	scaleLeases = 10000
	// scaleWorkers is the number of goroutines that acquire (and release)
	// the leases of the Leases10000 benchmarks, all on one session.
	scaleWorkers = 256
	// scaleConnectors is the number of sessions being opened (or closed,
	// or lock parents created) at once.
	scaleConnectors = 32
	// scaleStall bounds every wait for progress: a hand-off, a session.
	scaleStall = 30 * time.Second
	// scaleLimit bounds every wait for a whole phase: 1,000 waiters to
	// queue, 10,000 leases to be acquired or released.
	scaleLimit = 3 * time.Minute
)

// BenchmarkWaiters1000ZkLock and BenchmarkWaiters1000Mutex measure how a
// queue of 1,000 waiters drains: a holder takes the lock, then 1,000
// waiters, each on a session of its own (1,001 sessions, session i on
// server i%3), queue behind it on the same path, each blocked in Lock
// (zk.Lock, one per waiter) or Acquire (Mutex, one per waiter) in a
// goroutine of its own. Once the servers hold every waiter's watch (4lw
// mntr zk_watch_count, summed over the ensemble, has grown by 1,000), the
// timer starts and the holder releases; each waiter, once granted, releases
// at once and does not queue again. The timer stops when the last waiter
// has released. One iteration is one such drain: 1,000 hand-offs and 1,001
// releases. Besides ns/op (per drain), they report
//
//   - hand-offs/s: 1,000 per drain / the drain's time;
//   - cpu-ns/hand-off: user+sys CPU of this process during the drains,
//     per hand-off: every session's client, including its background
//     traffic, which a drain (seconds long) makes a large part of it: a
//     recipes.Session sends a sync every (timeout − margin − tick)/5
//     (570/s for 1,000 sessions at 10 s with the 200 ms tick given), a
//     zk.Conn a ping every timeout/3 (300/s);
//   - watch-fires/release: watch notifications the servers delivered
//     during the drain (mntr zk_sum_node_deleted_watch_count, summed over
//     the ensemble after a sync on each server), per release that had a
//     waiter behind it (1,000 per drain; the last release wakes nobody).
//     1.0 means each release woke its successor only: no herd.
//
// Each benchmark fails if a waiter is granted while another holder holds
// (an atomic holder count), if a waiter is granted before the holder
// releases, or if any other watch notification (node created, data or
// children changed) is delivered during the drain. It logs the
// connections that were lost and dialed again meanwhile: the machine was
// then too loaded for the figures to mean much (on a loaded 2-core machine
// a recipes.Session can even end on its local deadline, failing the run).
func BenchmarkWaiters1000ZkLock(b *testing.B) {
	zkc := benchkit.Cluster(b)
	path := zktest.Root(b)
	benchDrain(b, zkc, func() []benchLocker {
		conns := scaleOpen(b, scaleWaiters+1, func(i int) (*zk.Conn, error) {
			return scaleRawConn(zkc.Addrs()[i%len(zkc.Addrs())])
		}, (*zk.Conn).Close)
		lockers := make([]benchLocker, len(conns))
		for i, c := range conns {
			lockers[i] = benchZkLocker{zk.NewLock(c, path, zk.WorldACL(zk.PermAll))}
		}
		return lockers
	})
}

func BenchmarkWaiters1000Mutex(b *testing.B) {
	zkc := benchkit.Cluster(b)
	path := zktest.Root(b)
	benchDrain(b, zkc, func() []benchLocker {
		sessions := scaleOpen(b, scaleWaiters+1, func(i int) (*recipes.Session, error) {
			return scaleSession(zkc, zkc.Addrs()[i%len(zkc.Addrs())])
		}, func(s *recipes.Session) { s.Close() })
		lockers := make([]benchLocker, len(sessions))
		for i, s := range sessions {
			lockers[i] = &benchMutexLocker{m: lock.NewMutex(s, path)}
		}
		return lockers
	})
}

// benchDrain runs b.N drains (see BenchmarkWaiters1000Mutex) with the
// lockers open returns, each on a session of its own: the last one is the
// holder, the others wait.
func benchDrain(b *testing.B, zkc *zktest.Cluster, open func() []benchLocker) {
	// Every waiter's goroutine has returned once the drains are done, or
	// (if the benchmark failed) soon after its session is closed: b.Cleanup
	// runs this after the cleanups registered later, which close the
	// sessions.
	var running sync.WaitGroup
	b.Cleanup(func() {
		all := make(chan struct{})
		go func() { running.Wait(); close(all) }()
		select {
		case <-all:
		case <-time.After(scaleStall):
			b.Errorf("waiters still blocked %v after their sessions were closed", scaleStall)
		}
	})
	lockers := open()
	holder, waiters := lockers[len(lockers)-1], lockers[:len(lockers)-1]

	addrs := zkc.Addrs()
	// One connection per server: a sync on each makes that server apply
	// everything committed so far (and fire the watches it triggers)
	// before its counters are read.
	perServer := make([]*zk.Conn, len(addrs))
	for i, addr := range addrs {
		perServer[i] = benchkit.RawConn(b, addr)
	}
	caughtUp := func() scaleWatchCounts {
		b.Helper()
		for i, c := range perServer {
			if _, err := c.Sync("/"); err != nil {
				b.Fatalf("sync server %d: %v", i, err)
			}
		}
		st, err := scaleWatchStats(addrs)
		if err != nil {
			b.Fatal(err)
		}
		return st
	}

	var (
		cpu      time.Duration
		fires    int
		holders  atomic.Int32 // mutual exclusion check
		overlaps atomic.Int32 // grants while another held
	)
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		// Queue every waiter behind the holder.
		if err := holder.lock(); err != nil {
			b.Fatal(err)
		}
		holders.Add(1)
		base, err := scaleWatchStats(addrs)
		if err != nil {
			b.Fatal(err)
		}
		res := make(chan error, len(waiters)) // buffered: a waiter never blocks on it
		for i, l := range waiters {
			running.Add(1)
			go func() {
				defer running.Done()
				if err := l.lock(); err != nil {
					res <- fmt.Errorf("waiter %d: lock: %w", i, err)
					return
				}
				if holders.Add(1) != 1 {
					overlaps.Add(1)
				}
				holders.Add(-1)
				if err := l.unlock(); err != nil {
					res <- fmt.Errorf("waiter %d: unlock: %w", i, err)
					return
				}
				res <- nil
			}()
		}
		d0 := scaleDials.Load()
		scaleAwaitWatches(b, addrs, base.watches+len(waiters), res)
		before := caughtUp()
		d1 := scaleDials.Load()

		// Drain.
		b.StartTimer()
		cpu0 := benchkit.CPUTime()
		holders.Add(-1)
		if err := holder.unlock(); err != nil {
			b.Fatal(err)
		}
		stall := time.NewTimer(scaleStall)
		for k := range waiters {
			select {
			case err := <-res:
				if err != nil {
					b.Fatal(err)
				}
			case <-stall.C:
				b.Fatalf("drain stalled: %d of %d waiters done, none in the last %v", k, len(waiters), scaleStall)
			}
			stall.Reset(scaleStall)
		}
		stall.Stop()
		cpu += benchkit.CPUTime() - cpu0
		b.StopTimer()

		if q, d := d1-d0, scaleDials.Load()-d1; q+d != 0 {
			b.Logf("connections lost and dialed again: %d while the waiters queued, %d during the drain (the machine is overloaded: the figures are suspect)", q, d)
		}
		if n := overlaps.Load(); n != 0 {
			b.Fatalf("%d grants while another waiter held the lock", n)
		}
		after := caughtUp()
		fires += after.deleted - before.deleted
		if o := after.other - before.other; o != 0 {
			b.Fatalf("the drain delivered %d watch notifications other than node-deleted", o)
		}
	}
	handoffs := float64(b.N * len(waiters))
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(handoffs/s, "hand-offs/s")
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/handoffs, "cpu-ns/hand-off")
	b.ReportMetric(float64(fires)/handoffs, "watch-fires/release")
}

// scaleAwaitWatches waits until the ensemble holds want watches (every
// waiter blocked on its predecessor), failing b if a waiter returns
// meanwhile (the holder still holds: none may be granted) or if that takes
// longer than scaleLimit.
func scaleAwaitWatches(b *testing.B, addrs []string, want int, res <-chan error) {
	b.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	limit := time.NewTimer(scaleLimit)
	defer limit.Stop()
	var (
		st      scaleWatchCounts
		lastErr error // a busy server may let one mntr time out: poll on
	)
	for {
		var err error
		if st, err = scaleWatchStats(addrs); err != nil {
			lastErr = err
		} else if st.watches >= want {
			return
		}
		select {
		case err := <-res:
			if err == nil {
				err = errors.New("granted while the holder held the lock")
			}
			b.Fatalf("a waiter returned before the holder released: %v", err)
		case <-limit.C:
			b.Fatalf("waiters not queued after %v: %d watches on the servers, want %d (last mntr error: %v)", scaleLimit, st.watches, want, lastErr)
		case <-tick.C:
		}
	}
}

// scaleWatchCounts are watch counters summed over an ensemble (as
// herdCounts in herd_test.go).
type scaleWatchCounts struct {
	watches int // watches currently set
	deleted int // node-deleted watch notifications delivered so far
	other   int // node-created, data-changed and children-changed ones
}

// scaleWatchStats sums the watch counters of every server's mntr.
func scaleWatchStats(addrs []string) (scaleWatchCounts, error) {
	var c scaleWatchCounts
	for _, addr := range addrs {
		m, err := scaleMntr(addr)
		if err != nil {
			return c, err
		}
		for _, k := range []string{"zk_watch_count", "zk_sum_node_deleted_watch_count",
			"zk_sum_node_created_watch_count", "zk_sum_node_changed_watch_count", "zk_sum_node_children_watch_count"} {
			if _, ok := m[k]; !ok {
				return c, fmt.Errorf("mntr %s lacks %s", addr, k)
			}
		}
		c.watches += m["zk_watch_count"]
		c.deleted += m["zk_sum_node_deleted_watch_count"]
		c.other += m["zk_sum_node_created_watch_count"] + m["zk_sum_node_changed_watch_count"] + m["zk_sum_node_children_watch_count"]
	}
	return c, nil
}

// scaleMntrTries is how many times scaleMntr asks a server that does not
// answer within zktest.FourLetterTimeout (a server busy with a thousand
// sessions can be late).
const scaleMntrTries = 5

// scaleMntr returns the integer metrics of addr's 4lw mntr.
func scaleMntr(addr string) (map[string]int, error) {
	var (
		out string
		err error
	)
	for range scaleMntrTries {
		if out, err = zktest.FourLetter(addr, "mntr"); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("mntr %s (%d tries): %w", addr, scaleMntrTries, err)
	}
	m := make(map[string]int)
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(v); err == nil {
			m[k] = n
		}
	}
	return m, nil
}

// BenchmarkLeases10000Mutex and BenchmarkLeases10000Raw measure one
// process holding 10,000 locks at once, each on its own path
// (root/l0 … root/l9999, created as persistent nodes before the timer, so
// neither creates a parent), on one session to the follower every
// uncontended benchmark uses. One iteration acquires all 10,000, with
// 256 goroutines taking the next lock in turn (one session pipelines their
// requests), keeps them all held, then releases them all with the same
// parallelism.
//
//   - Mutex: lock.NewMutex(sess, root/lN).Acquire, then Lease.Release
//     (each Acquire creates its node and lists its parent: 2 round trips;
//     each Release deletes the node);
//   - Raw: go-zookeeper alone, as BenchmarkRawLoop creates its node: a
//     protected ephemeral-sequential create (dir+"/_c_"+guid+"-lock-"),
//     then a delete: the least a lock costs, with no check that it is held.
//
// Besides ns/op (per iteration), they report
//
//   - acquire-all-ms and release-all-ms: the time to acquire, and to
//     release, all 10,000;
//   - B/lease: heap in use while all are held minus before (each after a
//     runtime.GC), per lease: what a held lock keeps alive: the Mutex
//     handle and its Lease (with what the session keeps for it), or the raw
//     node's path. The slice holding them is allocated beforehand;
//   - goroutines/lease: runtime.NumGoroutine while all are held minus
//     before, per lease: 0 for a Mutex lease, which runs no goroutine
//     unless WithNodeWatch;
//   - cpu-ns/lease: user+sys CPU of this process over both phases, per
//     lease.
//
// They fail on any error, if a Mutex lease is not held once acquired, or
// unless the server's count of ephemeral nodes (mntr zk_ephemerals_count)
// is 10,000 more while all are held and back to its count before after
// they are released.
func BenchmarkLeases10000Mutex(b *testing.B) {
	zkc := benchkit.Cluster(b)
	addr := benchkit.Follower(b, zkc)
	dirs := scaleLockDirs(b, benchkit.RawConn(b, addr), zktest.Root(b), scaleLeases)
	sess := benchSession(b, zkc, addr)
	ctx := context.Background()
	type held struct {
		m *lock.Mutex
		l *lock.Lease
	}
	hs := make([]held, len(dirs))
	benchLeases(b, addr, len(dirs),
		func(i int) error {
			m := lock.NewMutex(sess, dirs[i])
			l, err := m.Acquire(ctx)
			if err != nil {
				return err
			}
			hs[i] = held{m, l}
			return nil
		},
		func() error {
			for i, h := range hs {
				if err := h.l.Err(); err != nil {
					return fmt.Errorf("lease %d (%s) not held: %w", i, h.l.Path(), err)
				}
			}
			return nil
		},
		func(i int) error {
			err := hs[i].l.Release(ctx)
			hs[i] = held{}
			return err
		})
}

func BenchmarkLeases10000Raw(b *testing.B) {
	zkc := benchkit.Cluster(b)
	addr := benchkit.Follower(b, zkc)
	conn := benchkit.RawConn(b, addr)
	dirs := scaleLockDirs(b, conn, zktest.Root(b), scaleLeases)
	acl := zk.WorldACL(zk.PermAll)
	nodes := make([]string, len(dirs))
	benchLeases(b, addr, len(dirs),
		func(i int) error {
			p, err := conn.Create(dirs[i]+"/_c_"+benchkit.GUID()+"-lock-", nil, zk.FlagEphemeral|zk.FlagSequence, acl)
			nodes[i] = p
			return err
		},
		func() error { return nil },
		func(i int) error {
			err := conn.Delete(nodes[i], -1)
			nodes[i] = ""
			return err
		})
}

// benchLeases runs b.N iterations of: acquire(i) for every i in [0, n)
// on scaleWorkers goroutines, check (all held), release(i) for every i on
// scaleWorkers goroutines; see BenchmarkLeases10000Mutex. addr is the
// server the session is connected to.
func benchLeases(b *testing.B, addr string, n int, acquire func(i int) error, check func() error, release func(i int) error) {
	ephemerals := func() int {
		b.Helper()
		m, err := scaleMntr(addr)
		if err != nil {
			b.Fatal(err)
		}
		e, ok := m["zk_ephemerals_count"]
		if !ok {
			b.Fatalf("mntr %s lacks zk_ephemerals_count", addr)
		}
		return e
	}
	var (
		acq, rel, cpu time.Duration
		heap, gs      float64
		ms            runtime.MemStats
	)
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		e0 := ephemerals()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap0, g0 := ms.HeapAlloc, runtime.NumGoroutine()

		b.StartTimer()
		cpu0, t0 := benchkit.CPUTime(), time.Now()
		if err := scaleEach(n, scaleWorkers, acquire); err != nil {
			b.Fatalf("acquire: %v", err)
		}
		acq += time.Since(t0)
		cpu += benchkit.CPUTime() - cpu0
		b.StopTimer()

		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap += float64(int64(ms.HeapAlloc) - int64(heap0))
		gs += float64(runtime.NumGoroutine() - g0)
		if err := check(); err != nil {
			b.Fatal(err)
		}
		if e := ephemerals(); e != e0+n {
			b.Fatalf("%d ephemeral nodes on the server while %d leases are held, want %d", e, n, e0+n)
		}

		b.StartTimer()
		cpu0, t0 = benchkit.CPUTime(), time.Now()
		if err := scaleEach(n, scaleWorkers, release); err != nil {
			b.Fatalf("release: %v", err)
		}
		rel += time.Since(t0)
		cpu += benchkit.CPUTime() - cpu0
		b.StopTimer()

		if e := ephemerals(); e != e0 {
			b.Fatalf("%d ephemeral nodes on the server after the release of all leases, want %d", e, e0)
		}
	}
	iters, leases := float64(b.N), float64(b.N*n)
	b.ReportMetric(float64(acq.Milliseconds())/iters, "acquire-all-ms")
	b.ReportMetric(float64(rel.Milliseconds())/iters, "release-all-ms")
	b.ReportMetric(heap/leases, "B/lease")
	b.ReportMetric(gs/leases, "goroutines/lease")
	b.ReportMetric(float64(cpu.Nanoseconds())/leases, "cpu-ns/lease")
}

// scaleLockDirs creates root/l0 … root/l<n-1> (and root's ancestors) as
// persistent nodes and returns their paths.
func scaleLockDirs(b *testing.B, conn *zk.Conn, root string, n int) []string {
	b.Helper()
	zktest.Mkdirs(b, conn, root)
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = root + "/l" + strconv.Itoa(i)
	}
	acl := zk.WorldACL(zk.PermAll)
	if err := scaleEach(n, scaleWorkers, func(i int) error {
		_, err := conn.Create(dirs[i], nil, 0, acl)
		return err
	}); err != nil {
		b.Fatalf("create the lock parents: %v", err)
	}
	return dirs
}

// scaleEach calls f(i) for every i in [0, n) from workers goroutines, each
// taking the next i, and returns the first error. Once a call has failed
// the workers take no more. It stops waiting, with an error, if the calls
// are not all done within scaleLimit (the caller fails, and its cleanups
// close the sessions the stuck calls wait on).
func scaleEach(n, workers int, f func(i int) error) error {
	var (
		next, done atomic.Int64
		failed     atomic.Bool
		wg         sync.WaitGroup
	)
	errc := make(chan error, 1)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					if failed.CompareAndSwap(false, true) {
						errc <- fmt.Errorf("call %d: %w", i, err)
					}
					return
				}
				done.Add(1)
			}
		}()
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	limit := time.NewTimer(scaleLimit)
	defer limit.Stop()
	select {
	case <-all:
		select {
		case err := <-errc:
			return err
		default:
			return nil
		}
	case <-limit.C:
		failed.Store(true)
		return fmt.Errorf("not done after %v: %d of %d calls done", scaleLimit, done.Load(), n)
	}
}

// scaleOpen opens n sessions, open(i) each, scaleConnectors at a time, and
// registers one b.Cleanup that closes them all, scaleConnectors at a time.
// It fails b if one cannot be opened.
func scaleOpen[T any](b *testing.B, n int, open func(i int) (T, error), closeFn func(T)) []T {
	b.Helper()
	var (
		mu     sync.Mutex
		opened []T
	)
	b.Cleanup(func() {
		mu.Lock()
		all := opened
		opened = nil
		mu.Unlock()
		_ = scaleEach(len(all), scaleConnectors, func(i int) error {
			closeFn(all[i])
			return nil
		})
	})
	out := make([]T, n)
	err := scaleEach(n, scaleConnectors, func(i int) error {
		c, err := open(i)
		if err != nil {
			return err
		}
		mu.Lock()
		opened = append(opened, c)
		mu.Unlock()
		out[i] = c
		return nil
	})
	if err != nil {
		b.Fatalf("open %d sessions: %v", n, err)
	}
	return out
}

// scaleDials counts the TCP connections the Waiters1000 benchmarks' sessions
// have dialed: one per session, plus one per reconnect.
var scaleDials atomic.Int64

// scaleDial is a zk.Dialer that counts its dials in scaleDials.
func scaleDial(network, address string, timeout time.Duration) (net.Conn, error) {
	scaleDials.Add(1)
	return net.DialTimeout(network, address, timeout)
}

// scaleRawConn is benchkit.RawConn for any goroutine: it returns an error
// rather than failing the benchmark, and waits for the session on its
// event rather than polling.
func scaleRawConn(addr string) (*zk.Conn, error) {
	has := make(chan struct{})
	var once sync.Once
	conn, _, err := zk.Connect([]string{addr}, benchkit.SessionTimeout,
		zk.WithLogger(benchkit.Discard{}),
		zk.WithLogInfo(false),
		zk.WithDialer(scaleDial),
		zk.WithEventCallback(func(ev zk.Event) {
			if ev.Type == zk.EventSession && ev.State == zk.StateHasSession {
				once.Do(func() { close(has) })
			}
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("zk.Connect(%s): %w", addr, err)
	}
	t := time.NewTimer(scaleStall)
	defer t.Stop()
	select {
	case <-has:
		return conn, nil
	case <-t.C:
		st := conn.State()
		conn.Close()
		return nil, fmt.Errorf("no session from %s after %v: state %v", addr, scaleStall, st)
	}
}

// scaleSession is benchSession for any goroutine: it returns an error
// rather than failing the benchmark.
func scaleSession(zkc *zktest.Cluster, addr string) (*recipes.Session, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scaleStall)
	defer cancel()
	opts := append(benchkit.SessionOptions(zkc, benchkit.SessionTimeout), recipes.WithDialer(scaleDial))
	s, err := recipes.Connect(ctx, []string{addr}, opts...)
	if err != nil {
		return nil, fmt.Errorf("recipes.Connect(%s): %w", addr, err)
	}
	return s, nil
}
