package verify

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/lock"
)

// Workload is one recipe exercised by every worker. To add one (barrier,
// membership, ...): implement it, register it in Workloads, record grants
// with Env.Invoke/Granted/Fail and Hold.Act/ActEnd/Release, and put its
// recipe-specific invariants in Check. The generic checkers (fencing,
// tokens, exclusion by Kind, prompt loss, orphans, liveness) then apply.
type Workload interface {
	Name() string
	// Paths are the znodes whose children are contender nodes, observed
	// by the orchestrator (relative to the run root).
	Paths(root string) []string
	// Run performs acquisitions until ctx is done (the run ends or the
	// session is over), releasing what it holds before it returns.
	Run(ctx context.Context, e *Env) error
	// Check verifies the recipe-specific invariants over the history.
	Check(h *History) []Violation
}

// Workloads is the registry, by name.
var Workloads = map[string]Workload{
	"mutex":     mutexWL{},
	"rwmutex":   rwWL{},
	"semaphore": semWL{},
	"election":  electionWL{},
	"multilock": multiWL{},
}

// DefaultWorkloads run in every worker unless told otherwise.
var DefaultWorkloads = []string{"mutex", "rwmutex", "semaphore", "election", "multilock", "barrier", "membership"}

// SemaphorePermits is the semaphore workload's permit count.
const SemaphorePermits = 2

// ---- Mutex: the holder writes to the fence with its token several times.

type mutexWL struct{}

func (mutexWL) Name() string                 { return "mutex" }
func (mutexWL) Paths(root string) []string   { return []string{path.Join(root, "mutex")} }
func (mutexWL) Check(h *History) []Violation { return nil }
func (mutexWL) Run(ctx context.Context, e *Env) error {
	res := path.Join(e.Root, "mutex")
	m := lock.NewMutex(e.Sess, res)
	for ctx.Err() == nil {
		op := e.Invoke("mutex", res, "x")
		actx, cancel := context.WithTimeout(ctx, AcquireTimeout)
		l, err := m.Acquire(actx)
		cancel()
		if err != nil {
			e.Fail(op, "mutex", res, err)
			if !e.afterFail(ctx, err) {
				return nil
			}
			continue
		}
		h := e.Granted(op, "mutex", "x", l.Context(), Member{res, l.Token(), e.Sess.Path(l.Path())}).CheckLease(l.Err)
		h.Act(l.Context(), ctx, 2+e.Rand.Intn(4), func() time.Duration { return e.between(20*time.Millisecond, 120*time.Millisecond) })
		h.Release(l.Release)
		sleepCtx(ctx, e.between(0, 150*time.Millisecond))
	}
	return nil
}

// ---- RWMutex: the fenced resource is a register. Writers read it and
// write new values, each replacing the one they read or wrote last;
// readers read it while they hold. The register checker (porcupine) checks
// that history for linearizability.

type rwWL struct{}

func (rwWL) Name() string                 { return "rwmutex" }
func (rwWL) Paths(root string) []string   { return []string{path.Join(root, "rw")} }
func (rwWL) Check(h *History) []Violation { return nil } // generic exclusion by Kind; the register checker
func (rwWL) Run(ctx context.Context, e *Env) error {
	res := path.Join(e.Root, "rw")
	rw := lock.NewRWMutex(e.Sess, res)
	for ctx.Err() == nil {
		write := e.Rand.Intn(3) == 0
		kind := "r"
		if write {
			kind = "w"
		}
		op := e.Invoke("rwmutex", res, kind)
		actx, cancel := context.WithTimeout(ctx, AcquireTimeout)
		var l *lock.Lease
		var err error
		if write {
			l, err = rw.Acquire(actx)
		} else {
			l, err = rw.AcquireRead(actx)
		}
		cancel()
		if err != nil {
			e.Fail(op, "rwmutex", res, err)
			if !e.afterFail(ctx, err) {
				return nil
			}
			continue
		}
		m := Member{res, l.Token(), e.Sess.Path(l.Path())}
		h := e.Granted(op, "rwmutex", kind, l.Context(), m).CheckLease(l.Err)
		if write {
			h.ReadModifyWrite(l.Context(), ctx, m, 1+e.Rand.Intn(3), func() time.Duration { return e.between(20*time.Millisecond, 80*time.Millisecond) })
		} else {
			h.ReadFor(l.Context(), ctx, m, 1+e.Rand.Intn(2), e.between(50*time.Millisecond, 300*time.Millisecond))
		}
		h.Release(l.Release)
		sleepCtx(ctx, e.between(0, 200*time.Millisecond))
	}
	return nil
}

// ---- Semaphore: at most SemaphorePermits holders at a time.

type semWL struct{}

func (semWL) Name() string { return "semaphore" }
func (semWL) Paths(root string) []string {
	return []string{path.Join(root, "sem", "leases"), path.Join(root, "sem", "locks")}
}
func (semWL) Check(h *History) []Violation {
	return h.checkConcurrency("semaphore", func(active []*HoldRec) string {
		if len(active) > SemaphorePermits {
			return fmt.Sprintf("%d holders of %d permits: %v", len(active), SemaphorePermits, active)
		}
		return ""
	})
}
func (semWL) Run(ctx context.Context, e *Env) error {
	res := path.Join(e.Root, "sem")
	s := lock.NewSemaphore(e.Sess, res, SemaphorePermits)
	for ctx.Err() == nil {
		op := e.Invoke("semaphore", res, "p")
		actx, cancel := context.WithTimeout(ctx, AcquireTimeout)
		l, err := s.Acquire(actx)
		cancel()
		if err != nil {
			e.Fail(op, "semaphore", res, err)
			if !e.afterFail(ctx, err) {
				return nil
			}
			continue
		}
		h := e.Granted(op, "semaphore", "p", l.Context(), Member{res, l.Token(), e.Sess.Path(l.Path())})
		h.Idle(l.Context(), ctx, e.between(100*time.Millisecond, 500*time.Millisecond))
		h.Release(l.Release)
		sleepCtx(ctx, e.between(0, 200*time.Millisecond))
	}
	return nil
}

// ---- Election: the leader heartbeats to the fence with its term token.

type electionWL struct{}

func (electionWL) Name() string                 { return "election" }
func (electionWL) Paths(root string) []string   { return []string{path.Join(root, "election")} }
func (electionWL) Check(h *History) []Violation { return nil } // leaders: generic exclusion (kind "l")
func (electionWL) Run(ctx context.Context, e *Env) error {
	res := path.Join(e.Root, "election")
	el := election.NewElection(e.Sess, res)
	for ctx.Err() == nil {
		op := e.Invoke("election", res, "l")
		actx, cancel := context.WithTimeout(ctx, AcquireTimeout)
		term, err := el.Acquire(actx)
		cancel()
		if err != nil {
			e.Fail(op, "election", res, err)
			if !e.afterFail(ctx, err) {
				return nil
			}
			continue
		}
		h := e.Granted(op, "election", "l", term.Context(), Member{res, term.Token(), e.Sess.Path(term.Path())}).CheckLease(term.Err)
		h.Act(term.Context(), ctx, 3+e.Rand.Intn(10), func() time.Duration { return 100 * time.Millisecond })
		h.Release(term.Release)
		sleepCtx(ctx, e.between(0, 200*time.Millisecond))
	}
	return nil
}

// ---- MultiLock over a random non-empty subset of two paths.

type multiWL struct{}

func (multiWL) Name() string { return "multilock" }
func (multiWL) Paths(root string) []string {
	return []string{path.Join(root, "multi", "a"), path.Join(root, "multi", "b")}
}
func (multiWL) Check(h *History) []Violation { return nil }
func (multiWL) Run(ctx context.Context, e *Env) error {
	a, b := path.Join(e.Root, "multi", "a"), path.Join(e.Root, "multi", "b")
	for ctx.Err() == nil {
		var paths []string
		switch e.Rand.Intn(3) {
		case 0:
			paths = []string{a}
		case 1:
			paths = []string{b}
		default:
			paths = []string{b, a}
		}
		ml := lock.NewMultiLock(e.Sess, paths)
		op := e.Invoke("multilock", paths[0], "x")
		actx, cancel := context.WithTimeout(ctx, AcquireTimeout)
		l, err := ml.Acquire(actx)
		cancel()
		if err != nil {
			e.Fail(op, "multilock", paths[0], err)
			if !e.afterFail(ctx, err) {
				return nil
			}
			continue
		}
		var ms []Member
		for _, ls := range l.Leases() {
			ms = append(ms, Member{path.Dir(ls.Path()), ls.Token(), e.Sess.Path(ls.Path())})
		}
		h := e.Granted(op, "multilock", "x", l.Context(), ms...).CheckLease(l.Err)
		h.Act(l.Context(), ctx, 1+e.Rand.Intn(3), func() time.Duration { return e.between(20*time.Millisecond, 80*time.Millisecond) })
		h.Release(l.Release)
		sleepCtx(ctx, e.between(0, 150*time.Millisecond))
	}
	return nil
}
