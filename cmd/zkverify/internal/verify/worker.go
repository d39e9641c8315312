package verify

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// WorkerConfig configures one worker process (cmd/zkverify).
type WorkerConfig struct {
	Name           string
	Servers        []string // the worker's proxy addresses
	FenceURL       string
	Root           string // znode root of the run
	Workloads      []string
	SessionTimeout time.Duration
	ServerTick     time.Duration // the servers' tickTime (recipes.WithServerTickTime), 0 if unknown
	Seed           int64
}

// Timeouts every workload uses, so the checkers know the bounds.
const (
	AcquireTimeout = 12 * time.Second // ctx of each Acquire
	ReleaseTimeout = 5 * time.Second  // ctx of each Release
)

// Env is what a workload gets: the session, the emitter and helpers that
// record the history in the form the checkers expect.
type Env struct {
	Sess *recipes.Session
	Root string
	Rand *rand.Rand

	w *worker
}

type worker struct {
	cfg  WorkerConfig
	em   *emitter
	http *http.Client
	ops  atomic.Int64
}

// RunWorker runs the workloads on a recipes.Client's sessions, one session
// at a time, until ctx is done. Events go to out.
func RunWorker(ctx context.Context, cfg WorkerConfig, out io.Writer) error {
	w := &worker{cfg: cfg, em: &emitter{w: out, src: cfg.Name},
		http: &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	var wls []Workload
	for _, n := range cfg.Workloads {
		wl, ok := Workloads[n]
		if !ok {
			return fmt.Errorf("unknown workload %q", n)
		}
		wls = append(wls, wl)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The worker's long-lived handle opens a new session whenever one is
	// over; the workloads run on one session at a time, so that every grant
	// in the history belongs to the session it was made on.
	client, err := recipes.NewClient(cfg.Servers, sessionOptions(cfg, logger), recipes.WithClientConnectTimeout(20*time.Second))
	if err != nil {
		return err
	}
	defer client.Close()
	incarnation := int64(0)
	for ctx.Err() == nil {
		sess, err := client.Live(ctx)
		if err != nil {
			break // ctx done
		}
		id, pw := sess.Credentials()
		w.em.emit(Event{Type: EvSession, Sess: id, Pass: hex.EncodeToString(pw), Dur: int64(sess.Timeout())})
		incarnation++
		wctx, wcancel := context.WithCancel(ctx)
		stop := context.AfterFunc(sess.Context(), wcancel)
		var wg sync.WaitGroup
		for i, wl := range wls {
			env := &Env{Sess: sess, Root: cfg.Root, w: w,
				Rand: rand.New(rand.NewSource(cfg.Seed*7919 + incarnation*131 + int64(i)))}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := wl.Run(wctx, env); err != nil && wctx.Err() == nil {
					w.em.emit(Event{Type: "workload_error", WL: wl.Name(), Err: err.Error()})
				}
			}()
		}
		<-wctx.Done()
		wg.Wait()
		stop()
		wcancel()
		if err := sess.Err(); err != nil {
			w.em.emit(Event{Type: EvSessionEnd, Sess: id, Err: err.Error()})
		}
	}
	w.em.emit(Event{Type: EvExit})
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Member is one lock granted by an acquisition (a MultiLock grants several).
type Member struct {
	Res  string // lock path, also the fence resource
	Tok  recipes.Token
	Node string // full path of the contender node
}

// Invoke records the start of an acquisition and returns its op id.
func (e *Env) Invoke(wl, res, kind string) int64 {
	op := e.w.ops.Add(1)
	e.w.em.emit(Event{Type: EvInvoke, WL: wl, Res: res, Op: op, Kind: kind, Sess: e.Sess.ID()})
	return op
}

// Fail records that the acquisition op returned err.
func (e *Env) Fail(op int64, wl, res string, err error) {
	e.w.em.emit(Event{Type: EvFail, WL: wl, Res: res, Op: op, Err: err.Error(), Sess: e.Sess.ID()})
}

// Hold is a granted acquisition, as the worker records it.
type Hold struct {
	e        *Env
	op       int64
	wl, kind string
	members  []Member
	released atomic.Bool
	stop     func() bool
	held     func() error // the lease's Err, checked before each fenced request
}

// CheckLease makes every fenced request of h check err (the lease's Err:
// nil while held) right before it is sent, after the context check, as an
// application using fence's lease-taking helpers would. Call it right after
// Granted, before acting.
func (h *Hold) CheckLease(err func() error) *Hold {
	h.held = err
	return h
}

// Granted records the grant of op and reports a "lost" event, with the
// cause and the time, as soon as leaseCtx is cancelled without Release.
func (e *Env) Granted(op int64, wl, kind string, leaseCtx context.Context, members ...Member) *Hold {
	h := &Hold{e: e, op: op, wl: wl, kind: kind, members: members}
	t := now()
	for _, m := range members {
		e.w.em.emit(Event{T: t, Type: EvOK, WL: wl, Res: m.Res, Op: op, Kind: kind, Tok: int64(m.Tok), Node: m.Node, Sess: e.Sess.ID()})
	}
	if leaseCtx.Err() != nil { // returned already lost: it never held
		for _, m := range members {
			e.w.em.emit(Event{T: t, Type: EvLost, WL: wl, Res: m.Res, Op: op, Kind: kind, Err: fmt.Sprint(context.Cause(leaseCtx)), Note: "at grant"})
		}
	}
	h.stop = context.AfterFunc(leaseCtx, func() {
		t := now()
		c := context.Cause(leaseCtx)
		if errors.Is(c, lock.ErrReleased) || errors.Is(c, election.ErrReleased) {
			return
		}
		cause := fmt.Sprint(c)
		for _, m := range members {
			e.w.em.emit(Event{T: t, Type: EvLost, WL: wl, Res: m.Res, Op: op, Kind: kind, Err: cause})
		}
	})
	return h
}

// ActEnd records that the holder stopped acting on the resource.
func (h *Hold) ActEnd() {
	t := now()
	for _, m := range h.members {
		h.e.w.em.emit(Event{T: t, Type: EvActEnd, WL: h.wl, Res: m.Res, Op: h.op})
	}
}

// Release records and runs release (Lease.Release, Term.Release).
func (h *Hold) Release(release func(ctx context.Context) error) {
	h.released.Store(true)
	t := now()
	for _, m := range h.members {
		h.e.w.em.emit(Event{T: t, Type: EvRelInvoke, WL: h.wl, Res: m.Res, Op: h.op})
	}
	ctx, cancel := context.WithTimeout(context.Background(), ReleaseTimeout)
	err := release(ctx)
	cancel()
	ev := Event{Type: EvRelDone, WL: h.wl, Op: h.op}
	if err != nil {
		ev.Err = err.Error()
	}
	t = now()
	for _, m := range h.members {
		ev.T, ev.Res = t, m.Res
		h.e.w.em.emit(ev)
	}
}

// Write sends a fenced write of member m to the orchestrator's fence,
// under ctx's check: nothing is sent once ctx is done.
func (h *Hold) Write(ctx context.Context, m Member) (bool, error) {
	acc, _, err := h.fenced(ctx, m, "/write", fenceReq{})
	return acc, err
}

// WriteValue is Write with a value for the fenced register: val replaces
// exp, the value this holder last read or wrote.
func (h *Hold) WriteValue(ctx context.Context, m Member, exp, val string) (bool, error) {
	acc, _, err := h.fenced(ctx, m, "/write", fenceReq{Val: val, Exp: exp})
	return acc, err
}

// Read reads the fenced register of member m with the holder's token (excl:
// under an exclusive lock, which raises the fence). It returns the value
// and whether the fence accepted the token.
func (h *Hold) Read(ctx context.Context, m Member, excl bool) (string, bool, error) {
	acc, val, err := h.fenced(ctx, m, "/read", fenceReq{Excl: excl})
	return val, acc, err
}

func (h *Hold) fenced(ctx context.Context, m Member, endpoint string, q fenceReq) (bool, string, error) {
	if err := ctx.Err(); err != nil {
		return false, "", err
	}
	if h.held != nil {
		if err := h.held(); err != nil {
			return false, "", err
		}
	}
	// The lease checks passed: we decide to send. Record whether our own
	// local deadline had passed by then (the library should have reported
	// the lease lost: a request decided after it is a late write).
	var late int64
	if decided, dl := time.Now(), h.e.Sess.Deadline(); decided.After(dl) {
		late = int64(decided.Sub(dl))
	}
	q.Res, q.Tok, q.Writer, q.Op = m.Res, int64(m.Tok), h.e.w.cfg.Name, h.op
	body, _ := json.Marshal(q)
	t := now()
	resp, err := h.e.w.http.Post(h.e.w.cfg.FenceURL+endpoint, "application/json", bytes.NewReader(body))
	ev := Event{T: t, Type: EvWrite, WL: h.wl, Res: m.Res, Op: h.op, Tok: int64(m.Tok), Val: q.Val, Exp: q.Exp, Late: late}
	if endpoint == "/read" {
		ev.Type, ev.Excl = EvRead, q.Excl
	}
	if err != nil {
		ev.Err = err.Error()
		h.e.w.em.emit(ev)
		return false, "", err
	}
	var r fenceResp
	err = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	ev.Dur = now() - t
	ev.Acc = r.Accepted
	if endpoint == "/read" {
		ev.Val = r.Value
	}
	if err != nil {
		ev.Err = err.Error()
	}
	h.e.w.em.emit(ev)
	return r.Accepted, r.Value, err
}

// ReadModifyWrite reads member m's register under an exclusive lock, then
// writes writes new unique values to it, each replacing the previous one,
// checking ctx (the lease's context) before each step and pausing between
// them; it stops at the first rejected or failed step, then records ActEnd.
func (h *Hold) ReadModifyWrite(ctx, stop context.Context, m Member, writes int, pause func() time.Duration) {
	defer h.ActEnd()
	cur, ok, err := h.Read(ctx, m, true)
	if !ok || err != nil {
		return
	}
	for i := 0; i < writes; i++ {
		if ctx.Err() != nil || stop.Err() != nil {
			return
		}
		val := fmt.Sprintf("%s/%d/%d", h.e.w.cfg.Name, h.op, i)
		if ok, err := h.WriteValue(ctx, m, cur, val); !ok || err != nil {
			return // rejected (stale) or outcome unknown: stop acting
		}
		cur = val
		select {
		case <-time.After(pause()):
		case <-ctx.Done():
			return
		case <-stop.Done():
			return
		}
	}
}

// ReadFor reads member m's register (shared: under a read lock) reads
// times, spread over d, then records ActEnd. It returns early when ctx or
// stop is done.
func (h *Hold) ReadFor(ctx, stop context.Context, m Member, reads int, d time.Duration) {
	defer h.ActEnd()
	for i := 0; i < reads; i++ {
		if ctx.Err() != nil || stop.Err() != nil {
			return
		}
		h.Read(ctx, m, false)
		select {
		case <-time.After(d / time.Duration(reads)):
		case <-ctx.Done():
			return
		case <-stop.Done():
			return
		}
	}
}

// Act writes to every member's fence resource writes times, checking
// ctx (the lease's context) before each write and pausing between them,
// then records ActEnd. It returns early when ctx or stop is done.
func (h *Hold) Act(ctx, stop context.Context, writes int, pause func() time.Duration) {
	defer h.ActEnd()
	for i := 0; i < writes; i++ {
		for _, m := range h.members {
			if ctx.Err() != nil || stop.Err() != nil {
				return
			}
			h.Write(ctx, m)
		}
		select {
		case <-time.After(pause()):
		case <-ctx.Done():
			return
		case <-stop.Done():
			return
		}
	}
}

// Idle waits d or until ctx or stop is done, then records ActEnd.
func (h *Hold) Idle(ctx, stop context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	case <-stop.Done():
	}
	h.ActEnd()
}

// between returns a random duration in [lo, hi).
func (e *Env) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(e.Rand.Int63n(int64(hi-lo)))
}

// afterFail pauses after a failed acquisition; false when the run is over.
func (e *Env) afterFail(ctx context.Context, err error) bool {
	if ctx.Err() != nil || e.Sess.Err() != nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	return sleepCtx(ctx, 100*time.Millisecond)
}

func sessionOptions(cfg WorkerConfig, logger *slog.Logger) []recipes.Option {
	opts := []recipes.Option{recipes.WithSessionTimeout(cfg.SessionTimeout), recipes.WithLogger(logger)}
	if cfg.ServerTick > 0 {
		opts = append(opts, recipes.WithServerTickTime(cfg.ServerTick))
	}
	return opts
}
