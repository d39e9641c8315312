// Package benchkit holds what the benchmarks of every recipe share: the
// ensemble they run on, go-zookeeper connections for the baselines, the
// measurement of rate and client CPU, and latency percentiles. It is for
// tests only; docs/PERFORMANCE.md says how the figures are read.
package benchkit

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// SessionTimeout is the session timeout of every benchmark connection,
// raw or recipes, unless a benchmark says otherwise (long enough that
// pings are rare).
const SessionTimeout = 10 * time.Second

// warmup is how long Cluster exercises the servers before the first
// benchmark of a process.
const warmup = 3 * time.Second

var warmOnce sync.Once

// Cluster returns the ensemble every benchmark of the process shares: 3
// servers configured as in production: fsync on (zktest.Config.ForceSync),
// or off when $ZKRECIPES_BENCH_FSYNC is "off" (to see what fsync adds to
// the latencies), and empty container nodes reaped every minute, the
// server's default (zktest reaps them every second, for tests: our lock
// parents are containers, zk.Lock's persistent nodes, and a reaped parent
// costs its next acquisition two more requests). The first call runs a
// create/list/delete loop on every server for 3 s, so that no benchmark
// pays for the JVMs' JIT warm-up.
func Cluster(b *testing.B) *zktest.Cluster {
	b.Helper()
	fsync := os.Getenv("ZKRECIPES_BENCH_FSYNC") != "off"
	zkc := zktest.Shared(b, zktest.Config{Servers: 3, ForceSync: fsync, ContainerCheck: time.Minute})
	warmOnce.Do(func() { warm(b, zkc) })
	return zkc
}

func warm(b *testing.B, zkc *zktest.Cluster) {
	b.Helper()
	dir := zktest.Root(b)
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(zkc.Addrs()))
	for _, addr := range append(zkc.Addrs(), zkc.Addrs()...) {
		conn := RawConn(b, addr)
		zktest.Mkdirs(b, conn, dir)
		wg.Add(1)
		go func() {
			defer wg.Done()
			acl := zk.WorldACL(zk.PermAll)
			for end := time.Now().Add(warmup); time.Now().Before(end); {
				p, err := conn.Create(dir+"/_c_"+GUID()+"-lock-", nil, zk.FlagEphemeral|zk.FlagSequence, acl)
				if err != nil {
					errs <- fmt.Errorf("warm-up on %s: %w", addr, err)
					return
				}
				_, _, _ = conn.Children(dir)
				_, _, _ = conn.Exists(p)
				_ = conn.Delete(p, -1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// ServerTick is the tickTime of the servers zktest launches (its default).
const ServerTick = 200 * time.Millisecond

// SessionOptions are the options of every benchmark recipes.Session: the
// session timeout, no logging and, on servers zktest launched, their
// tickTime (recipes.WithServerTickTime, which we recommend: the session
// then needs fewer syncs to prove its liveness, see docs/PERFORMANCE.md).
func SessionOptions(zkc *zktest.Cluster, timeout time.Duration) []recipes.Option {
	opts := []recipes.Option{
		recipes.WithSessionTimeout(timeout),
		recipes.WithLogger(slog.New(slog.DiscardHandler)),
	}
	if !zkc.External() {
		opts = append(opts, recipes.WithServerTickTime(ServerTick))
	}
	return opts
}

// Follower returns the address of a follower of zkc: where the
// uncontended benchmarks connect, the same server for all of a run.
func Follower(b *testing.B, zkc *zktest.Cluster) string {
	b.Helper()
	leader := zkc.WaitLeader(b)
	addrs := zkc.Addrs()
	return addrs[(leader+1)%len(addrs)]
}

// Discard is a go-zookeeper logger that drops every line.
type Discard struct{}

// Printf drops the line.
func (Discard) Printf(string, ...any) {}

// RawConn opens a go-zookeeper connection to addr only, with
// SessionTimeout, and waits for its session; b.Cleanup closes it.
func RawConn(b *testing.B, addr string) *zk.Conn {
	b.Helper()
	conns := RawConns(b, []string{addr}, 1)
	return conns[0]
}

// RawConns opens n go-zookeeper connections at once, connection i to
// addrs[i%len(addrs)] alone, with SessionTimeout, and waits for their
// sessions; b.Cleanup closes them.
func RawConns(b *testing.B, addrs []string, n int) []*zk.Conn {
	b.Helper()
	conns := make([]*zk.Conn, n)
	ready := make([]chan struct{}, n)
	for i := range conns {
		ready[i] = make(chan struct{})
		var once sync.Once
		conn, _, err := zk.Connect([]string{addrs[i%len(addrs)]}, SessionTimeout,
			zk.WithLogger(Discard{}),
			zk.WithLogInfo(false),
			zk.WithEventCallback(func(ev zk.Event) { // never blocks, unlike the event channel
				if ev.Type == zk.EventSession && ev.State == zk.StateHasSession {
					once.Do(func() { close(ready[i]) })
				}
			}),
		)
		if err != nil {
			b.Fatalf("zk.Connect(%s): %v", addrs[i%len(addrs)], err)
		}
		b.Cleanup(conn.Close)
		conns[i] = conn
	}
	timeout := time.After(30 * time.Second)
	for i, ch := range ready {
		select {
		case <-ch:
		case <-timeout:
			b.Fatalf("no session for connection %d to %s: state %v", i, addrs[i%len(addrs)], conns[i].State())
		}
	}
	return conns
}

// GUID returns a random 32-hex-digit id, as protected node names carry.
func GUID() string {
	var g [16]byte
	_, _ = rand.Read(g[:])
	return hex.EncodeToString(g[:])
}

// CPUTime returns the user+sys CPU time this process has used: the
// client's, as the servers are separate JVM processes.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Switches returns how many times a thread of this process went to sleep
// (voluntary context switches: waiting in the poller, parking an idle
// thread, the runtime's monitor sleeping), each with a wake-up to follow.
func Switches() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Nvcsw)
}

// Syscalls returns how many read and write system calls this process has
// made (socket reads and writes, almost all of them here), from
// /proc/self/io; ok is false where that file is missing (not Linux).
func Syscalls() (reads, writes int64, ok bool) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0, false
	}
	for line := range strings.Lines(string(b)) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), ": ")
		n, err := strconv.ParseInt(value, 10, 64)
		switch {
		case err != nil:
		case name == "syscr":
			reads = n
		case name == "syscw":
			writes = n
		}
	}
	return reads, writes, true
}

// Measure runs loop (b.N operations) with the timer and the CPU clock
// started, then reports the rate (b.N per second, as unit), cpu-ns/op,
// the read and write system calls per operation (reads/op, writes/op, on
// Linux) and the voluntary context switches (switches/op).
func Measure(b *testing.B, unit string, loop func()) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	r0, w0, sysOK := Syscalls()
	cpu0, sw0 := CPUTime(), Switches()
	loop()
	cpu, sw := CPUTime()-cpu0, Switches()-sw0
	r1, w1, _ := Syscalls()
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, unit)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(sw)/float64(b.N), "switches/op")
	if sysOK {
		b.ReportMetric(float64(r1-r0)/float64(b.N), "reads/op")
		b.ReportMetric(float64(w1-w0)/float64(b.N), "writes/op")
	}
}

// Latencies collects the durations of a benchmark's operations. It is safe
// for concurrent use.
type Latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

// Add records one duration.
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// Report reports the 50th and 99th percentiles in milliseconds, as
// "<prefix>p50-ms" and "<prefix>p99-ms"; nothing when none was recorded.
func (l *Latencies) Report(b *testing.B, prefix string) {
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
	if len(d) == 0 {
		return
	}
	b.ReportMetric(Quantile(d, 0.50), prefix+"p50-ms")
	b.ReportMetric(Quantile(d, 0.99), prefix+"p99-ms")
}

// Quantile returns the q-quantile of ds (nearest rank) in milliseconds.
func Quantile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(max(int(math.Ceil(q*float64(len(s))))-1, 0), len(s)-1)
	return Ms(s[i])
}

// Ms returns d in milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
