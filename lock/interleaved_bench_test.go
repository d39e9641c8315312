package lock_test

import (
	"context"
	"fmt"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/benchkit"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// BenchmarkInterleaved runs our Mutex and go-zookeeper's zk.Lock side by
// side in one process, on one ensemble, in alternating blocks of
// operations: zk.Lock's block, then ours, then ours, then zk.Lock's (ABBA,
// so a drift in the machine's load over a pair of pairs hits both sides
// alike). Each side's wall time, client CPU (getrusage: the whole process,
// during that side's blocks) and read and write system calls are summed
// over its blocks. b.N is the number of operations of each side.
//
// The other lock benchmarks run each side in a process and on an ensemble
// of its own (scripts/bench.sh pairs them by round); over a round the
// machine's load moves by ±20 %, more than the difference we measure.
// Here both sides meet the same servers within a second of each other.
// The idle side's sessions stay open meanwhile (a sync every 1.76 s of
// ours, a ping every 3.3 s of go-zookeeper's: their CPU counts to the side
// running, a few microseconds a second).
//
// Reported per side (ours-, zk-): ops/s, cpu-ns/op, reads/op, writes/op,
// switches/op (voluntary context switches);
// and rate-ratio, cpu-ratio: ours ÷ zk.Lock's.
func BenchmarkInterleaved(b *testing.B) {
	cases := []struct {
		name      string
		sessions  int  // sessions (connections) per side, session i on server i%3; 0: one on a follower
		lockers   int  // lockers per side: one per session when contended, else on distinct locks of one session
		block     int  // operations per block
		exclusive bool // one lock for all lockers
	}{
		{"Uncontended", 0, 1, 50, true},
		{"Contended4", 4, 4, 50, true},
		{"Contended16", 16, 16, 50, true},
		{"Contended50", 50, 50, 500, true}, // a queue about 50 deep: each release wakes the next waiter
		{"ManyLocks32", 0, 32, 200, false},
		{"ManyLocks256", 0, 256, 400, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			zkc := benchkit.Cluster(b)
			var ours, theirs []benchLocker
			root := zktest.Root(b)
			pathOf := func(i int) string {
				if c.exclusive {
					return root + "/lock"
				}
				return fmt.Sprintf("%s/l%d", root, i)
			}
			// Each side's connections are opened, and its blocks run, under a
			// profiler label (side=zk, side=ours) that the goroutines they
			// start inherit: go tool pprof -tagfocus side=ours splits a CPU
			// profile (-test.cpuprofile) between the sides.
			labels := [2]context.Context{
				pprof.WithLabels(context.Background(), pprof.Labels("side", "zk")),
				pprof.WithLabels(context.Background(), pprof.Labels("side", "ours")),
			}
			pprof.Do(context.Background(), pprof.Labels("side", "zk"), func(context.Context) {
				if c.sessions == 0 {
					conn := benchkit.RawConn(b, benchkit.Follower(b, zkc))
					for i := range c.lockers {
						theirs = append(theirs, benchZkLocker{zk.NewLock(conn, pathOf(i)+"-zk", zk.WorldACL(zk.PermAll))})
					}
					return
				}
				for i, conn := range benchkit.RawConns(b, zkc.Addrs(), c.sessions) {
					theirs = append(theirs, benchZkLocker{zk.NewLock(conn, pathOf(i)+"-zk", zk.WorldACL(zk.PermAll))})
				}
			})
			pprof.Do(context.Background(), pprof.Labels("side", "ours"), func(context.Context) {
				if c.sessions == 0 {
					sess := benchSession(b, zkc, benchkit.Follower(b, zkc))
					for i := range c.lockers {
						ours = append(ours, &benchMutexLocker{m: lock.NewMutex(sess, pathOf(i)+"-ours")})
					}
					return
				}
				for i := range c.sessions {
					sess := benchSession(b, zkc, zkc.Addrs()[i%len(zkc.Addrs())])
					ours = append(ours, &benchMutexLocker{m: lock.NewMutex(sess, pathOf(i)+"-ours")})
				}
			})
			for i := range ours { // the locks' parents, outside the measurement
				benchWarmLocker(b, theirs[i])
				benchWarmLocker(b, ours[i])
			}
			var sides [2]interleavedSide // 0: zk.Lock, 1: ours
			lockers := [2][]benchLocker{theirs, ours}
			lat := new(benchkit.Latencies) // not reported: runLockers wants one
			block := func(side, n int) {
				r0, w0, _ := benchkit.Syscalls()
				cpu0, sw0, t0 := benchkit.CPUTime(), benchkit.Switches(), time.Now()
				var err error
				pprof.SetGoroutineLabels(labels[side])
				err = runLockers(lockers[side], int64(n), c.exclusive, lat)
				pprof.SetGoroutineLabels(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				s := &sides[side]
				s.wall += time.Since(t0)
				s.cpu += benchkit.CPUTime() - cpu0
				s.switches += benchkit.Switches() - sw0
				r1, w1, _ := benchkit.Syscalls()
				s.reads += r1 - r0
				s.writes += w1 - w0
				s.ops += int64(n)
			}
			block(0, c.block/2) // warm both sides' paths, unmeasured
			block(1, c.block/2)
			sides = [2]interleavedSide{}
			b.ReportAllocs()
			b.ResetTimer()
			for pair := 0; sides[1].ops < int64(b.N); pair++ {
				n := min(c.block, b.N-int(sides[1].ops))
				first := pair % 2 // ABBA: zk.Lock first in even pairs
				block(first, n)
				block(1-first, n)
			}
			b.StopTimer()
			for i, prefix := range []string{"zk-", "ours-"} {
				s := sides[i]
				b.ReportMetric(float64(s.ops)/s.wall.Seconds(), prefix+"ops/s")
				b.ReportMetric(float64(s.cpu.Nanoseconds())/float64(s.ops), prefix+"cpu-ns/op")
				b.ReportMetric(float64(s.reads)/float64(s.ops), prefix+"reads/op")
				b.ReportMetric(float64(s.writes)/float64(s.ops), prefix+"writes/op")
				b.ReportMetric(float64(s.switches)/float64(s.ops), prefix+"switches/op")
			}
			zkS, oursS := sides[0], sides[1]
			b.ReportMetric(zkS.wall.Seconds()/oursS.wall.Seconds(), "rate-ratio")
			b.ReportMetric(float64(oursS.cpu)/float64(zkS.cpu), "cpu-ratio")
		})
	}
}

// interleavedSide sums one side's blocks of BenchmarkInterleaved.
type interleavedSide struct {
	ops           int64
	wall, cpu     time.Duration
	reads, writes int64
	switches      int64 // voluntary context switches
}
