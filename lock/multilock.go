package lock

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// MultiLock takes several exclusive locks all or nothing. It acquires them
// in one global order (sorted by full path), so two MultiLocks over
// overlapping sets of paths cannot deadlock; if any acquisition fails, or
// the one ctx ends, the locks already taken are released before Acquire
// returns.
type MultiLock struct {
	src     recipes.Source
	mutexes []*Mutex
	maxHold time.Duration // WithMaxHold, for the whole MultiLease
	err     error
}

// NewMultiLock returns a MultiLock over paths (relative to the chroot) on
// src, a *recipes.Session or a *recipes.Client, each an exclusive lock
// compatible with Mutex. Bad arguments (no paths, a duplicate, an invalid
// path, a nil source) are reported by Acquire.
func NewMultiLock(src recipes.Source, paths []string, opts ...Option) *MultiLock {
	ml := &MultiLock{src: src}
	if len(paths) == 0 {
		ml.err = fmt.Errorf("lock: multi-lock needs at least one path")
		return ml
	}
	sorted := append([]string(nil), paths...)
	sort.Strings(sorted)
	for i, p := range sorted {
		if i > 0 && p == sorted[i-1] {
			ml.err = fmt.Errorf("lock: multi-lock: duplicate path %q", p)
			return ml
		}
		m := NewMutex(src, p, opts...)
		if m.err != nil {
			ml.err = m.err
			return ml
		}
		// The members' maximum hold is the MultiLease's, counted once all
		// are held (newMultiLease).
		ml.maxHold, m.opts.maxHold = m.opts.maxHold, 0
		ml.mutexes = append(ml.mutexes, m)
	}
	return ml
}

// Acquire blocks until every lock is held, ctx is done or the session is
// over (on a Client: until every lock is held or ctx is done, starting over
// on each new session). Every member is acquired on the same session. On
// error it holds none of them.
func (ml *MultiLock) Acquire(ctx context.Context) (*MultiLease, error) {
	return ml.acquire(ctx, false)
}

// TryAcquire takes every lock if none is held by another contender, else
// returns ErrLocked holding none.
func (ml *MultiLock) TryAcquire(ctx context.Context) (*MultiLease, error) {
	return ml.acquire(ctx, true)
}

func (ml *MultiLock) acquire(ctx context.Context, try bool) (*MultiLease, error) {
	if ml.err != nil {
		return nil, ml.err
	}
	if ctx == nil {
		return nil, fmt.Errorf("lock: multi-lock: nil context")
	}
	for {
		sess, err := live(ctx, ml.src)
		if err != nil {
			return nil, fmt.Errorf("lock: multi-lock: %w", err)
		}
		held, err := ml.acquireAll(ctx, sess, try)
		if err != nil {
			if again(ctx, ml.src, sess, try) {
				continue
			}
			return nil, err
		}
		// A member taken early may have been lost while we waited for a
		// later one: then give everything back and start over.
		var lost error
		for _, l := range held {
			if lost = l.Err(); lost != nil {
				break
			}
		}
		if lost == nil {
			return newMultiLease(held, ml.maxHold), nil
		}
		rctx := context.WithoutCancel(ctx)
		for _, h := range held {
			h.Release(rctx)
		}
		if again(ctx, ml.src, sess, try) {
			continue
		}
		if ctx.Err() != nil || sess.Err() != nil || try {
			return nil, fmt.Errorf("lock: multi-lock: %w", lost)
		}
	}
}

func (ml *MultiLock) acquireAll(ctx context.Context, sess *recipes.Session, try bool) ([]*Lease, error) {
	held := make([]*Lease, 0, len(ml.mutexes))
	for _, m := range ml.mutexes {
		l, err := m.acquireOn(ctx, sess, Kind, contend.Predecessor, try)
		if err != nil {
			rctx := context.WithoutCancel(ctx)
			for _, h := range held {
				err = errors.Join(err, h.Release(rctx))
			}
			return nil, err
		}
		held = append(held, l)
	}
	return held, nil
}

// MultiLease holds every lock of a MultiLock. It is over as soon as any of
// its leases' Context is cancelled: lost, revoked (WithRevocable: the
// members stay held until Release, as for a Lease, but the MultiLease's
// Done closes and Err returns the revocation cause) or released. Its
// methods are safe for concurrent use.
type MultiLease struct {
	leases []*Lease
	ctx    context.Context
	ctxOut context.Context // ctx, with an Err that checks the members first
	cancel context.CancelCauseFunc
}

func newMultiLease(leases []*Lease, maxHold time.Duration) *MultiLease {
	ml := &MultiLease{leases: leases}
	if maxHold > 0 {
		at := time.Now().Add(maxHold)
		for _, l := range leases {
			l.h.Limit(at, ErrMaxHold)
		}
	}
	ml.ctx, ml.cancel = context.WithCancelCause(context.Background())
	ml.ctxOut = core.WithChecksAndDeadline(ml.ctx, func() { ml.Err() }, leases[0].h.Deadline)
	for _, l := range leases {
		context.AfterFunc(l.Context(), func() { ml.cancel(context.Cause(l.Context())) })
	}
	return ml
}

// Leases returns the member leases in acquisition (path) order.
func (ml *MultiLease) Leases() []*Lease { return append([]*Lease(nil), ml.leases...) }

// TokenOf returns the fencing token of the member whose lock is at path
// (the path given to NewMultiLock), or false.
func (ml *MultiLease) TokenOf(path string) (Token, bool) {
	for _, l := range ml.leases {
		if lockPathOf(l) == path {
			return l.Token(), true
		}
	}
	return 0, false
}

// Context is cancelled as soon as any member lease is lost, or Release
// begins; context.Cause is that member's cause. Its Err checks the members
// first, as MultiLease.Err does.
func (ml *MultiLease) Context() context.Context { return ml.ctxOut }

// Done is closed as soon as any member lease's Context is cancelled (lost,
// revoked or released), or Release begins.
func (ml *MultiLease) Done() <-chan struct{} { return ml.ctx.Done() }

// Err is nil until Done; then the cause of the first member whose Context
// was cancelled (wrapping ErrLost or ErrRevoked), or ErrReleased.
//
// It asks each member first (Lease.Err checks the session's local
// deadline), so a check made after the deadline never says "held".
func (ml *MultiLease) Err() error {
	if ml.ctx.Err() == nil {
		for _, l := range ml.leases {
			if l.Context().Err() != nil {
				ml.cancel(context.Cause(l.Context()))
				break
			}
		}
	}
	if ml.ctx.Err() == nil {
		return nil
	}
	return context.Cause(ml.ctx)
}

// Release releases every member lease (see Lease.Release) and returns
// their errors joined. It is idempotent.
func (ml *MultiLease) Release(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("lock: multi-lease release: nil context")
	}
	ml.cancel(ErrReleased)
	var err error
	for i := len(ml.leases) - 1; i >= 0; i-- {
		err = errors.Join(err, ml.leases[i].Release(ctx))
	}
	return err
}

// lockPathOf returns the lock path of a lease: its node's parent.
func lockPathOf(l *Lease) string {
	p := l.Path()
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return p
}
