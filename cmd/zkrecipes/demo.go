package main

// The demo (make demo, the README's first command): several workers
// contend for one lock and write to a resource that checks fencing tokens. Midway the holder freezes with a write in hand; its session
// expires, the next worker takes over with a larger token, and when the
// frozen worker wakes its late write is rejected by the fence.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkrecipes/zkrecipes/fence"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

var demoCommand = &command{
	name:    "demo",
	summary: "start local ZooKeeper servers and show a stale write rejected by a fence",
	usage: `
Usage:
  zkrecipes demo [--short] [--workers N] [--writes N]

Starts a local ZooKeeper ensemble (3 servers; 1 with --short) with zktest,
which needs a ZooKeeper installation (Debian/Ubuntu: apt-get install
zookeeper, or ZOOKEEPER_HOME=/path/to/apache-zookeeper; or point
ZKTEST_SERVERS at an existing ensemble). Several workers then take turns
holding one lock and writing to a counter guarded by a fence (fence.Memory)
that rejects tokens older than the newest it accepted. Midway the holder
freezes with a write in hand (its connection is black-holed, as in a long
GC pause); its session expires, the next worker takes over with a larger
token, and when the frozen worker wakes up its late write is rejected.

Exit codes: 0 the stale write was rejected; 1 error (or it was not).
`,
}

func init() { demoCommand.run = runDemoCommand }

// demoConfig sizes the demo.
type demoConfig struct {
	Workers        int
	Writes         int // accepted writes before the workers stop
	Servers        int
	SessionTimeout time.Duration
	LockPath       string
}

func runDemoCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(demoCommand)
	cfg := demoConfig{Workers: 4, Writes: 24, Servers: 3, SessionTimeout: 2 * time.Second, LockPath: "/demo/fenced-workers/lock"}
	short := fs.Bool("short", false, "one server, 3 workers, 12 writes, 1s session timeout")
	fs.IntVar(&cfg.Workers, "workers", 0, "number of workers (default 4; 3 with --short)")
	fs.IntVar(&cfg.Writes, "writes", 0, "accepted writes before stopping (default 24; 12 with --short)")
	var verbose verbosity
	fs.Var(&verbose, "v", "show the library's log (INFO; -v -v for DEBUG) on stderr")
	_, rest, err := parse(demoCommand, fs, args, 0, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fail(exitUsage, "unexpected argument %q", rest[0])
	}
	workers, writes := 4, 24
	if *short {
		cfg.Servers, cfg.SessionTimeout, workers, writes = 1, time.Second, 3, 12
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["workers"] {
		cfg.Workers = workers
	}
	if !given["writes"] {
		cfg.Writes = writes
	}
	if cfg.Workers < 2 || cfg.Writes < 3 {
		return fail(exitUsage, "need --workers >= 2 and --writes >= 3")
	}
	// The library's log would drown the timeline: errors only,
	// unless -v. (A frozen worker's lost session logs warnings by design.)
	level := slog.LevelError
	if verbose == 1 {
		level = slog.LevelInfo
	} else if verbose > 1 {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))

	fmt.Fprintf(stdout, "Starting a local %d-node ZooKeeper ensemble...\n", cfg.Servers)
	zkc, err := zktest.Launch(zktest.Config{Servers: cfg.Servers})
	if err != nil {
		return fail(exitError, "%v", err)
	}
	defer zkc.Stop()
	fmt.Fprintf(stdout, "ZooKeeper is up at %v\n\n", zkc.Addrs())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := runDemo(ctx, zkc.Addrs(), cfg, stdout)
	if err != nil {
		return fail(exitError, "demo failed: %v", err)
	}
	res.print(stdout)
	res.Metrics.print(stdout)
	res.Metrics.shutdown()
	if !res.StaleRejected {
		return fail(exitError, "the frozen worker's stale write was not rejected")
	}
	return nil
}

// counter is the protected resource: it applies a write only under
// fence.Memory.Do, which rejects tokens older than the newest it accepted.
type counter struct {
	fence   fence.Memory
	mu      sync.Mutex
	value   int
	onWrite func(worker string, tok recipes.Token, accepted bool, highest recipes.Token)
}

const counterResource = "counter"

// write adds one to the counter on behalf of worker holding token tok.
func (c *counter) write(worker string, tok recipes.Token) error {
	err := c.fence.Do(counterResource, tok, func() error {
		c.mu.Lock()
		c.value++
		c.mu.Unlock()
		c.onWrite(worker, tok, true, tok)
		return nil
	})
	var stale *fence.StaleError
	if errors.As(err, &stale) {
		c.onWrite(worker, tok, false, stale.Highest)
	}
	return err
}

// demoResult is what the demo observed.
type demoResult struct {
	Accepted, Rejected int
	Counter            int
	Acquisitions       int
	FrozenWorker       string
	FrozenToken        recipes.Token
	TakeoverToken      recipes.Token
	LostCause          error
	StaleRejected      bool
	Elapsed            time.Duration
	Metrics            *demoMetrics // the sessions' metrics, read after they closed
}

func (r demoResult) print(out io.Writer) {
	fmt.Fprintf(out, "\nSummary after %v\n", r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "  lock acquisitions:     %d\n", r.Acquisitions)
	fmt.Fprintf(out, "  fenced writes:         %d accepted, %d rejected (counter = %d)\n", r.Accepted, r.Rejected, r.Counter)
	fmt.Fprintf(out, "  frozen holder:         %s with token %v\n", r.FrozenWorker, r.FrozenToken)
	fmt.Fprintf(out, "  next holder's token:   %v (larger: %v)\n", r.TakeoverToken, r.TakeoverToken > r.FrozenToken)
	fmt.Fprintf(out, "  frozen lease ended by: %v\n", r.LostCause)
	fmt.Fprintf(out, "  stale write rejected:  %v\n", r.StaleRejected)
}

type demoRun struct {
	metrics *demoMetrics
	cfg     demoConfig
	out     io.Writer
	start   time.Time
	counter *counter

	mu  sync.Mutex // serialises timeline lines and res
	res demoResult

	accepted  atomic.Int64
	freezeReq atomic.Bool   // the next holder to see it freezes
	frozen    chan frozenAt // the frozen worker reports here
	resume    chan struct{} // closed to wake the frozen worker
	takeover  chan recipes.Token
	takeOnce  sync.Once
}

type frozenAt struct {
	worker string
	token  recipes.Token
	proxy  *zktest.Proxy
}

// runDemo runs the workers against the ensemble at addrs.
func runDemo(ctx context.Context, addrs []string, cfg demoConfig, out io.Writer) (demoResult, error) {
	d := &demoRun{
		metrics: newDemoMetrics(),
		cfg:     cfg, out: out, start: time.Now(),
		frozen:   make(chan frozenAt, 1),
		resume:   make(chan struct{}),
		takeover: make(chan recipes.Token, 1),
	}
	d.counter = &counter{onWrite: d.onWrite}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Workers)
	for i := 1; i <= cfg.Workers; i++ {
		name := fmt.Sprintf("worker-%d", i)
		// Each worker reaches ZooKeeper through its own TCP proxy, so the
		// demo can cut one worker off as a frozen process would be.
		proxy, err := zktest.NewProxy(addrs)
		if err != nil {
			return demoResult{}, err
		}
		defer proxy.Close()
		sess, err := recipes.Connect(ctx, proxy.Addrs(), recipes.WithSessionTimeout(cfg.SessionTimeout),
			recipes.WithMeterProvider(d.metrics.provider))
		if err != nil {
			return demoResult{}, fmt.Errorf("%s: %w", name, err)
		}
		defer sess.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.worker(ctx, name, sess, proxy); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}

	// Midway, freeze whoever holds the lock.
	err := d.orchestrate(ctx)
	if err != nil {
		cancel()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		err = errors.Join(err, e)
	}
	d.counter.mu.Lock()
	value := d.counter.value
	d.counter.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.res.Accepted = int(d.accepted.Load())
	d.res.Counter = value
	d.res.Elapsed = time.Since(d.start)
	d.res.Metrics = d.metrics
	return d.res, err
}

func (d *demoRun) orchestrate(ctx context.Context) error {
	// After a third of the writes onWrite asks the holder to freeze.
	// (Asking from here, by polling, could come too late: the workers may
	// make all their writes before the first poll, and stop.)
	var f frozenAt
	select {
	case f = <-d.frozen:
	case <-ctx.Done():
		return ctx.Err()
	}
	d.logf("%s FREEZES holding token %v (a stop-the-world pause: its connection goes silent)", f.worker, f.token)
	f.proxy.Set(zktest.Blackhole)
	var tok recipes.Token
	select {
	case tok = <-d.takeover:
	case <-ctx.Done():
		return ctx.Err()
	}
	d.mu.Lock()
	d.res.TakeoverToken = tok
	d.mu.Unlock()
	d.logf("%s wakes up and sends the write it had prepared with token %v", f.worker, f.token)
	f.proxy.Set(zktest.Pass)
	close(d.resume)
	return nil
}

func (d *demoRun) worker(ctx context.Context, name string, sess *recipes.Session, proxy *zktest.Proxy) error {
	m := lock.NewMutex(sess, d.cfg.LockPath, lock.WithData([]byte(name)))
	for d.accepted.Load() < int64(d.cfg.Writes) {
		waitStart := time.Now()
		l, err := m.Acquire(ctx)
		if err != nil {
			if recipes.IsLoss(err) {
				return nil // our session is over (the frozen worker's is)
			}
			return err
		}
		d.mu.Lock()
		d.res.Acquisitions++
		d.mu.Unlock()
		d.logf("%s acquired the lock, token %v (waited %v)", name, l.Token(), time.Since(waitStart).Round(time.Millisecond))
		for i := 0; i < 3 && l.Context().Err() == nil; i++ {
			if d.freezeReq.CompareAndSwap(true, false) {
				d.freeze(name, l, proxy)
				return nil // this worker's session is gone; it retires
			}
			if err := d.counter.write(name, l.Token()); err != nil {
				return err // only the frozen worker may be stale
			}
		}
		if err := l.Release(context.WithoutCancel(ctx)); err != nil {
			return err
		}
	}
	return nil
}

// freeze simulates a process pause inside the critical section: the worker
// has checked its lease and prepared a write, then stops running. While it
// is stopped its session expires and another worker takes the lock.
func (d *demoRun) freeze(name string, l *lock.Lease, proxy *zktest.Proxy) {
	d.mu.Lock()
	d.res.FrozenWorker, d.res.FrozenToken = name, l.Token()
	d.mu.Unlock()
	d.frozen <- frozenAt{worker: name, token: l.Token(), proxy: proxy}
	<-d.resume
	<-l.Done()
	d.logf("%s's lease had ended while it was frozen: %v", name, l.Err())
	err := d.counter.write(name, l.Token())
	d.mu.Lock()
	d.res.LostCause = l.Err()
	d.res.StaleRejected = errors.Is(err, fence.ErrStale)
	d.mu.Unlock()
}

func (d *demoRun) onWrite(worker string, tok recipes.Token, accepted bool, highest recipes.Token) {
	d.mu.Lock()
	frozenTok, frozenName := d.res.FrozenToken, d.res.FrozenWorker
	if !accepted {
		d.res.Rejected++
	}
	d.mu.Unlock()
	if !accepted {
		d.logf("FENCE REJECTED %s's write: token %v is older than %v", worker, tok, highest)
		return
	}
	n := d.accepted.Add(1)
	d.logf("fence accepted write #%d from %s (token %v)", n, worker, tok)
	if n == int64(d.cfg.Writes/3) {
		d.freezeReq.Store(true) // the holder freezes before its next write
	}
	if frozenTok != 0 && worker != frozenName && tok > frozenTok {
		d.takeOnce.Do(func() { d.takeover <- tok })
	}
}

func (d *demoRun) logf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "[%7.3fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}
