package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// Config sizes the demo.
type Config struct {
	Workers        int
	Writes         int // accepted writes before the workers stop
	Servers        int
	SessionTimeout time.Duration
	LockPath       string
}

func defaultConfig() Config {
	return Config{Workers: 4, Writes: 24, Servers: 3, SessionTimeout: 2 * time.Second, LockPath: "/demo/fenced-workers/lock"}
}

// Fence is the protected resource: a counter that accepts a write only with
// a token at least as large as the largest it has accepted.
type Fence struct {
	mu      sync.Mutex
	highest recipes.Token
	value   int
	owner   string
	onWrite func(worker string, tok recipes.Token, accepted bool, highest recipes.Token)
}

// ErrStale is returned for a write with a token older than the fence's.
var ErrStale = errors.New("stale fencing token")

// Write adds one to the counter on behalf of worker holding token tok.
func (f *Fence) Write(worker string, tok recipes.Token) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ok := tok >= f.highest
	if ok {
		f.highest, f.owner = tok, worker
		f.value++
	}
	if f.onWrite != nil {
		f.onWrite(worker, tok, ok, f.highest)
	}
	if !ok {
		return fmt.Errorf("%w: %v < %v", ErrStale, tok, f.highest)
	}
	return nil
}

// Result is what the demo observed.
type Result struct {
	Accepted, Rejected int
	Counter            int
	Acquisitions       int
	FrozenWorker       string
	FrozenToken        recipes.Token
	TakeoverToken      recipes.Token
	LostCause          error
	StaleRejected      bool
	Elapsed            time.Duration
}

// Print writes the summary.
func (r Result) Print(out io.Writer) {
	fmt.Fprintf(out, "\nSummary after %v\n", r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "  lock acquisitions:     %d\n", r.Acquisitions)
	fmt.Fprintf(out, "  fenced writes:         %d accepted, %d rejected (counter = %d)\n", r.Accepted, r.Rejected, r.Counter)
	fmt.Fprintf(out, "  frozen holder:         %s with token %v\n", r.FrozenWorker, r.FrozenToken)
	fmt.Fprintf(out, "  next holder's token:   %v (larger: %v)\n", r.TakeoverToken, r.TakeoverToken > r.FrozenToken)
	fmt.Fprintf(out, "  frozen lease ended by: %v\n", r.LostCause)
	fmt.Fprintf(out, "  stale write rejected:  %v\n", r.StaleRejected)
}

type demoRun struct {
	cfg   Config
	out   io.Writer
	start time.Time
	fence *Fence

	mu  sync.Mutex // serialises timeline lines
	res Result

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

// Run runs the demo's workers against the ensemble at addrs.
func Run(ctx context.Context, addrs []string, cfg Config, out io.Writer) (Result, error) {
	if cfg.Workers < 2 {
		return Result{}, fmt.Errorf("need at least 2 workers, got %d", cfg.Workers)
	}
	d := &demoRun{
		cfg: cfg, out: out, start: time.Now(),
		frozen:   make(chan frozenAt, 1),
		resume:   make(chan struct{}),
		takeover: make(chan recipes.Token, 1),
	}
	d.fence = &Fence{onWrite: d.onWrite}

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
			return Result{}, err
		}
		defer proxy.Close()
		sess, err := recipes.Connect(ctx, proxy.Addrs(), recipes.WithSessionTimeout(cfg.SessionTimeout))
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", name, err)
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
	d.fence.mu.Lock()
	counter := d.fence.value
	d.fence.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.res.Accepted = int(d.accepted.Load())
	d.res.Counter = counter
	d.res.Elapsed = time.Since(d.start)
	return d.res, err
}

func (d *demoRun) orchestrate(ctx context.Context) error {
	// Wait for a third of the writes, then ask the next holder to freeze.
	for d.accepted.Load() < int64(d.cfg.Writes/3) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.freezeReq.Store(true)
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
			if err := d.fence.Write(name, l.Token()); err != nil {
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
	err := d.fence.Write(name, l.Token())
	d.mu.Lock()
	d.res.LostCause = l.Err()
	d.res.StaleRejected = errors.Is(err, ErrStale)
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
	if frozenTok != 0 && worker != frozenName && tok > frozenTok {
		d.takeOnce.Do(func() { d.takeover <- tok })
	}
}

func (d *demoRun) logf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "[%7.3fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}
