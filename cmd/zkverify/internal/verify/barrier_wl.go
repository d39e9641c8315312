package verify

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zkrecipes/zkrecipes/barrier"
	"github.com/zkrecipes/zkrecipes/lock"
)

// ---- Barrier: every worker takes part in a double barrier per round.
//
// Rounds are aligned across the worker processes by the clock events are
// stamped with (now: they run on one machine): round r is now() / BarrierPeriod, its
// barrier is <root>/barrier/<r>. At the start of each round a worker records
// an invoke, calls Enter (bounded by BarrierEnterTimeout, so a participant
// whose peer died returns ErrBroken or a timeout instead of hanging: recorded
// as a fail with the error), records the pass as a grant, idles briefly and
// calls Leave through Hold.Release (bounded by ReleaseTimeout).
//
// A workload cannot learn the number of worker processes (WorkerConfig has
// no such field and the worker is started with fixed flags), so the barrier
// size is the fixed BarrierN. With more workers than BarrierN, the ones
// beyond the first BarrierN of a round get ErrFull: an expected outcome,
// recorded as a fail like any other.
//
// Grants are recorded with Res "<barrier path>#<worker>" (unique per worker
// and round: a worker enters each round at most once) and no token: the
// generic token checker compares the tokens of one Res only, and a barrier
// pass has no fencing token. The participant's node path is not exposed by
// DoubleBarrier, so Node is empty (the stale-grant and node-deletion parts of
// prompt-loss do not apply).
//
// Checks: barrier-early, barrier-full and barrier-hang (Check; the last is tighter than the
// generic liveness checker, which applies too: Enter is an invoke with a
// result, Leave a release with rel_invoke/rel_done).

const (
	BarrierN            = 3
	BarrierPeriod       = 4 * time.Second
	BarrierEnterTimeout = 2500 * time.Millisecond // < BarrierPeriod - barrierLate: a worker that timed out is ready for the next round, so workers stay in step
	barrierLate         = time.Second             // do not enter a round more than this after its start
)

type barrierWL struct{}

func init() { Workloads["barrier"] = barrierWL{} }

func (barrierWL) Name() string { return "barrier" }

// Paths is nil: the barrier paths are new per round (the observer watches
// fixed parents given at start), the round nodes are persistent (owner 0,
// which the orphan checker would report as "no worker announced") and stay
// after the run (the final "paths empty" check would fail), and a barrier's
// children include the "ready" node, which is not a participant's node.
func (barrierWL) Paths(root string) []string { return nil }

// barrierLastRound is the last round this process entered (one process is
// one worker; Run is called again with each new session): a worker enters
// each round at most once.
var barrierLastRound struct {
	sync.Mutex
	r int64
}

func barrierRes(p, worker string) string { return p + "#" + worker }

func (barrierWL) Run(ctx context.Context, e *Env) error {
	period := int64(BarrierPeriod)
	for ctx.Err() == nil {
		n := now()
		r := n / period
		barrierLastRound.Lock()
		last := barrierLastRound.r
		barrierLastRound.Unlock()
		if r <= last || time.Duration(n-r*period) > barrierLate {
			r++
			if r <= last {
				r = last + 1
			}
			if !sleepCtx(ctx, time.Duration(r*period-now())) {
				return nil
			}
		}
		barrierLastRound.Lock()
		barrierLastRound.r = r
		barrierLastRound.Unlock()

		p := path.Join(e.Root, "barrier", strconv.FormatInt(r, 10))
		res := barrierRes(p, e.w.cfg.Name)
		d := barrier.NewDoubleBarrier(e.Sess, p, BarrierN, barrier.WithData([]byte(e.w.cfg.Name)))
		op := e.Invoke("barrier", res, "p")
		ectx, cancel := context.WithTimeout(ctx, BarrierEnterTimeout)
		err := d.Enter(ectx)
		cancel()
		if err != nil {
			e.Fail(op, "barrier", res, err)
			if ctx.Err() != nil || e.Sess.Err() != nil {
				return nil
			}
			continue
		}
		// The pass is "held" until Leave; its context ends with the session.
		lctx, lcancel := context.WithCancelCause(e.Sess.Context())
		h := e.Granted(op, "barrier", "p", lctx, Member{Res: res})
		h.Idle(lctx, ctx, e.between(50*time.Millisecond, 300*time.Millisecond))
		lcancel(lock.ErrReleased) // Granted reports no "lost" for a release
		h.Release(d.Leave)
	}
	return nil
}

type barrierOp struct {
	w, p               string
	inv, res, end      int64 // end: last sign of the op (fail, lost, rel_done), 0: none
	ok                 bool
	err                string
	relInvoke, relDone int64
}

func (barrierWL) Check(h *History) []Violation {
	var v []Violation
	ops := map[string]*barrierOp{}
	var order []*barrierOp
	for _, e := range h.Events {
		if e.WL != "barrier" {
			continue
		}
		k := opKey(e.Src, e.Op)
		o := ops[k]
		switch e.Type {
		case EvInvoke:
			p, _, _ := strings.Cut(e.Res, "#")
			o = &barrierOp{w: e.Src, p: p, inv: e.T}
			ops[k] = o
			order = append(order, o)
			continue
		}
		if o == nil {
			continue
		}
		switch e.Type {
		case EvOK:
			o.ok, o.res = true, e.T
		case EvFail:
			o.res, o.err = e.T, e.Err
		case EvRelInvoke:
			o.relInvoke = e.T
		case EvRelDone:
			o.relDone = e.T
		}
		if e.Type == EvFail || e.Type == EvLost || e.Type == EvRelDone {
			o.end = max(o.end, e.T)
		}
	}
	slack := int64(h.Bounds.Slack)
	grace := 2*int64(h.Bounds.SessionTimeout) + 2*slack
	byPath := map[string][]*barrierOp{}
	for _, o := range order {
		byPath[o.p] = append(byPath[o.p], o)
	}
	for p, os := range byPath {
		for _, o := range os {
			if !o.ok {
				continue
			}
			t := o.res
			// (1) At least BarrierN distinct workers invoked Enter on p before t.
			inv := map[string]bool{}
			for _, x := range os {
				if x.inv < t {
					inv[x.w] = true
				}
			}
			if len(inv) < BarrierN {
				v = append(v, Violation{"barrier-early", t, fmt.Sprintf("%s: %s passed with only %d distinct workers having entered (n = %d): %v",
					p, o.w, len(inv), BarrierN, barrierKeys(inv))})
				continue
			}
			// (2) Stronger: the barrier opened when BarrierN participant nodes
			// existed at once, so at some instant s <= t at least BarrierN
			// distinct workers had a node there. A worker's node lives within
			// [invoke, end of its op + grace for background removal or session
			// expiry + time stopped]; an op with no end is open.
			type edge struct {
				t int64
				d int
				w string
			}
			var edges []edge
			for _, x := range os {
				if x.inv >= t {
					continue
				}
				to := h.End
				if x.end != 0 {
					to = x.end + grace
					to += h.frozenFor(x.w, x.end, to)
				}
				edges = append(edges, edge{x.inv, 1, x.w}, edge{to, -1, x.w})
			}
			sort.Slice(edges, func(i, j int) bool {
				if edges[i].t != edges[j].t {
					return edges[i].t < edges[j].t
				}
				return edges[i].d > edges[j].d
			})
			alive, best := map[string]int{}, 0
			for _, ed := range edges {
				if ed.t > t {
					break
				}
				alive[ed.w] += ed.d
				if alive[ed.w] == 0 {
					delete(alive, ed.w)
				}
				best = max(best, len(alive))
			}
			if best < BarrierN {
				v = append(v, Violation{"barrier-early", t, fmt.Sprintf("%s: %s passed but at most %d distinct workers were ever in Enter (or just out of it) at once before (n = %d)",
					p, o.w, best, BarrierN)})
			}
		}
		// Never more than n through: ErrFull is "returned by Enter to a
		// participant beyond the first n". A pass is beyond the first n when
		// n others had passed on p and had not all finished leaving (their
		// generation of the barrier was not over) when it invoked Enter.
		for _, o := range os {
			if !o.ok {
				continue
			}
			var in []string
			for _, x := range os {
				if x != o && x.ok && x.res <= o.res && (x.relDone == 0 || x.relDone > o.inv) {
					in = append(in, x.w)
				}
			}
			if len(in) >= BarrierN {
				v = append(v, Violation{"barrier-full", o.res, fmt.Sprintf("%s: %s passed (Enter invoked %s) while %d participants %v had passed and not all left (n = %d): it should have got ErrFull",
					p, o.w, fmtT(o.inv), len(in), in, BarrierN)})
			}
		}
		// No hang: Enter returns by its own deadline, Leave by ReleaseTimeout
		// (+ 2 slack + time stopped); the generic liveness checker has the
		// looser AcquireTimeout bound for Enter.
		for _, o := range os {
			if k := h.killed[o.w]; k != 0 && k > o.inv && (o.res == 0 || k < o.res) {
				continue
			}
			bound := o.inv + int64(BarrierEnterTimeout) + 2*slack
			bound += h.frozenFor(o.w, o.inv, bound)
			if o.res == 0 && bound >= h.End {
				continue
			}
			if o.res == 0 || o.res > bound {
				v = append(v, Violation{"barrier-hang", o.inv, fmt.Sprintf("%s: %s's Enter did not return within %v (+slack): returned %s", p, o.w, BarrierEnterTimeout, fmtT(o.res))})
			}
			if o.relInvoke == 0 {
				continue
			}
			if k := h.killed[o.w]; k != 0 && k > o.relInvoke && (o.relDone == 0 || k < o.relDone) {
				continue
			}
			bound = o.relInvoke + int64(ReleaseTimeout) + 2*slack
			bound += h.frozenFor(o.w, o.relInvoke, bound)
			if o.relDone == 0 && bound >= h.End {
				continue
			}
			if o.relDone == 0 || o.relDone > bound {
				v = append(v, Violation{"barrier-hang", o.relInvoke, fmt.Sprintf("%s: %s's Leave did not return within %v (+slack): returned %s", p, o.w, ReleaseTimeout, fmtT(o.relDone))})
			}
		}
	}
	return v
}

func barrierKeys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
