package lock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// LeaseKind is the name part of semaphore permit nodes, as in Curator's
// InterProcessSemaphoreV2 ("<path>/leases/_c_<guid>-lease-0000000042").
const LeaseKind = "lease-"

// ErrPermits is wrapped by the error returned when a semaphore's stored
// permit count differs from the one this client was configured with.
var ErrPermits = errors.New("lock: semaphore permit count mismatch")

// Semaphore is a counting semaphore with n permits at a ZooKeeper path.
// Each Acquire returns a Lease for one permit; a permit is freed by Release
// or when its session ends.
//
// Protocol (Curator's InterProcessSemaphoreV2): the permit count is stored
// as the data of the semaphore's node, and a client configured with another
// count gets an error wrapping ErrPermits. A waiter first takes an internal
// Mutex at <path>/locks, so that only one waiter at a time watches the
// permit holders (no herd); it then creates its permit node under
// <path>/leases and holds a permit once its node is among the n lowest. As
// nodes below it can only go away, a holder stays among the n lowest: there
// are never more than n holders. The internal mutex is released as soon as
// the permit is held. TryAcquire does not wait and so skips the internal
// mutex: it creates its permit node, reads the holders once, and keeps the
// node only if it is among the n lowest (a node created later sorts after
// every waiter, so it cannot push one out of the n lowest).
//
// Tokens: a permit's token (its node's czxid) grows with every grant but is
// shared with up to n-1 other holders: it does not make a holder exclusive.
type Semaphore struct {
	src     recipes.Source
	path    string
	permits int
	mutex   *Mutex
	leases  *queue
	opts    options
	err     error
}

// NewSemaphore returns a semaphore with permits permits at path (relative
// to the chroot) on src, a *recipes.Session or a *recipes.Client. Bad
// arguments are reported by its methods.
func NewSemaphore(src recipes.Source, path string, permits int, opts ...Option) *Semaphore {
	s := &Semaphore{src: src, path: path, permits: permits}
	s.leases = newQueue(src, path+"/leases", []string{LeaseKind}, opts)
	s.opts, s.err = s.leases.opts, s.leases.err
	if s.err == nil && permits < 1 {
		s.err = fmt.Errorf("lock: semaphore %s: permits must be at least 1, got %d", path, permits)
	}
	if s.err == nil && (s.opts.revocable || s.opts.lockDelay > 0) {
		s.err = fmt.Errorf("lock: semaphore %s: WithRevocable and WithLockDelay apply to Mutex and RWMutex only", path)
	}
	if s.err == nil {
		s.mutex = &Mutex{newQueue(src, path+"/locks", mutexKinds, opts)}
		// The internal mutex only serialises waiters: no revocation, no
		// lock-delay, no node watch, no maximum hold for it.
		s.mutex.opts.revocable, s.mutex.opts.lockDelay, s.mutex.opts.watch = false, 0, false
		s.mutex.opts.maxHold, s.mutex.opts.kazoo = 0, false
	}
	return s
}

// Path returns the semaphore's path.
func (s *Semaphore) Path() string { return s.path }

// Permits returns the configured number of permits.
func (s *Semaphore) Permits() int { return s.permits }

// Acquire blocks until a permit is held, ctx is done or the session is
// over (on a Client: until a permit is held or ctx is done, queueing again
// on each new session). On error no node of ours is left behind.
func (s *Semaphore) Acquire(ctx context.Context) (*Lease, error) {
	return s.acquire(ctx, false)
}

// TryAcquire takes a permit if one is free now, else returns ErrLocked,
// leaving no node behind.
func (s *Semaphore) TryAcquire(ctx context.Context) (*Lease, error) {
	return s.acquire(ctx, true)
}

func (s *Semaphore) acquire(ctx context.Context, try bool) (*Lease, error) {
	if err := core.Check(ctx, s.err, "lock", "semaphore", s.path); err != nil {
		return nil, err
	}
	start := time.Now()
	for {
		sess, err := live(ctx, s.src)
		if err != nil {
			err = fmt.Errorf("lock: semaphore %s: %w", s.path, err)
			observerOf(s.src).Acquired("semaphore", start, err, ErrLocked, nil)
			return nil, err
		}
		l, err := s.acquirePermit(ctx, sess, try)
		if err == nil && l.Err() != nil {
			// Lost as it was granted (see queue.acquireAs): queue again.
			if ctx.Err() == nil && sess.Err() == nil && !try {
				continue
			}
			l, err = nil, fmt.Errorf("lock: semaphore %s: %w", s.path, l.Err())
		}
		if err != nil && again(ctx, s.src, sess, try) {
			continue
		}
		core.Of(sess).Observer().Acquired("semaphore", start, err, ErrLocked, nil)
		return l, err
	}
}

// acquirePermit acquires a permit on sess: the internal mutex and the
// permit node both on that session.
func (s *Semaphore) acquirePermit(ctx context.Context, sess *recipes.Session, try bool) (*Lease, error) {
	leases, err := s.leases.on(sess)
	if err != nil {
		return nil, err
	}
	if err := s.checkPermits(ctx, leases); err != nil {
		return nil, err
	}
	// A Try form does not wait, so it needs no turn at watching the
	// holders: it skips the internal mutex, whose holder may be a waiter.
	if !try {
		guard, err := s.mutex.acquireOn(ctx, sess, Kind, contend.Predecessor, false)
		if err != nil {
			return nil, err
		}
		defer guard.Release(context.WithoutCancel(ctx))
	}

	e, _, err := leases.Join(ctx, LeaseKind, s.opts.data, s.opts.watch, contend.Unblocked)
	if err != nil {
		return nil, fmt.Errorf("lock: semaphore %s: %w", s.path, err)
	}
	e.Suspensions, err = s.awaitPermit(ctx, leases, e, try) // what NewHold checks against
	if err != nil {
		leases.Discard(ctx, e.Path)
		if errors.Is(err, contend.ErrBlocked) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock: semaphore %s: %w", s.path, err)
	}
	policy := sess.LossPolicy()
	if s.opts.policy != nil {
		policy = *s.opts.policy
	}
	l := &Lease{
		h:    contend.NewHold(leases, e, contend.HoldConfig{Recipe: "semaphore", LoseOnSuspend: policy == recipes.LoseOnSuspend, Lost: ErrLost, Freed: ErrReleased}),
		path: leases.Sess.Unpath(e.Path),
	}
	l.limit(s.opts.maxHold)
	return l, nil
}

// awaitPermit waits until our permit node is among the n lowest, watching
// the permit holders' list (only the internal mutex's holder does this).
func (s *Semaphore) awaitPermit(ctx context.Context, leases *contend.Queue, e *contend.Entry, try bool) (uint64, error) {
	sess := leases.Sess
	for {
		_, changed := sess.Changed()
		susp := sess.Suspensions()
		var g core.Watched[[]string]
		err := sess.Retry(ctx, func(ctx context.Context) error {
			var err error
			g, err = sess.ChildrenW(ctx, leases.Dir)
			return err
		})
		if err != nil {
			return susp, err
		}
		list := contend.Sorted(g.Value, leases.Kinds)
		me := contend.Index(list, e.Node.Name)
		switch {
		case me < 0:
			if serr := sess.Err(); serr != nil {
				return susp, serr
			}
			return susp, fmt.Errorf("%w: %s", contend.ErrNodeGone, e.Path)
		case me < s.permits:
			return susp, sess.Err()
		case try:
			return susp, contend.ErrBlocked
		}
		select {
		case <-g.Watch:
		case <-changed:
		case <-ctx.Done():
			return susp, context.Cause(ctx)
		case <-sess.Done():
			return susp, sess.Err()
		}
	}
}

// checkPermits stores the permit count on the semaphore's node, or checks
// that the stored one is ours.
func (s *Semaphore) checkPermits(ctx context.Context, leases *contend.Queue) error {
	sess := leases.Sess
	full := sess.Path(s.path)
	want := strconv.Itoa(s.permits)
	mismatch := func(stored string) error {
		return fmt.Errorf("%w: semaphore %s has %s permits, this client was configured with %d",
			ErrPermits, s.path, stored, s.permits)
	}
	return sess.Retry(ctx, func(ctx context.Context) error {
		for {
			g, err := sess.Get(ctx, full)
			switch {
			case errors.Is(err, zk.ErrNoNode):
				if err := leases.EnsurePath(ctx, full, []byte(want)); err != nil {
					return err
				}
				continue
			case err != nil:
				return err
			case string(g.Data) == want:
				return nil
			case len(g.Data) > 0:
				return mismatch(string(g.Data))
			}
			// Created without a count (as a parent of another node): set ours.
			_, err = sess.Set(ctx, full, []byte(want), g.Stat.Version)
			if err != nil && !errors.Is(err, zk.ErrBadVersion) {
				return err
			}
		}
	})
}
