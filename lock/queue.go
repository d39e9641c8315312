package lock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// queue is what every lock recipe of this package shares: a contender queue
// at a path, and the acquisition of a place in it that no lower contender
// blocks. The recipes differ only in their node kinds and blocker rule.
type queue struct {
	sess *recipes.Session
	path string
	q    *contend.Queue
	opts options
	err  error // a construction error, returned by every call
}

func newQueue(sess *recipes.Session, path string, kinds []string, opts []Option) queue {
	b := queue{sess: sess, path: path}
	b.err = b.init(kinds, opts)
	return b
}

func (b *queue) init(kinds []string, opts []Option) error {
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&b.opts); err != nil {
			return err
		}
	}
	var err error
	b.q, err = contend.NewQueue("lock", b.sess, b.path, kinds, b.opts.acl)
	return err
}

// Path returns the lock's path (relative to the session's chroot).
func (b *queue) Path() string { return b.path }

// acquire joins the queue with a node of kind and waits until blocks says
// nothing blocks it (with try: returns ErrLocked instead of waiting).
func (b *queue) acquire(ctx context.Context, kind string, blocks contend.Blocker, try bool) (*Lease, error) {
	if b.err != nil {
		return nil, b.err
	}
	if ctx == nil {
		return nil, fmt.Errorf("lock: acquire %s: nil context", b.path)
	}
	start, recipe := time.Now(), recipeOf(kind)
	l, err := b.acquireAs(ctx, kind, recipe, blocks, try)
	b.sess.Observer().Acquired(recipe, start, err, ErrLocked, nil)
	return l, err
}

// recipeOf names a node kind for metrics.
func recipeOf(kind string) string {
	switch kind {
	case ReadKind:
		return "read"
	case WriteKind:
		return "write"
	case LeaseKind:
		return "semaphore"
	}
	return "mutex"
}

// acquireAs acquires until it holds a lease that is not already lost: a
// lease can be lost between the grant and its hand-over (the connection
// dropped under LoseOnSuspend); its node is then being deleted, and we
// queue again rather than hand out a lease that is over.
func (b *queue) acquireAs(ctx context.Context, kind, recipe string, blocks contend.Blocker, try bool) (*Lease, error) {
	for {
		l, err := b.acquireOnce(ctx, kind, recipe, blocks, try)
		if err != nil || l.Err() == nil {
			return l, err
		}
		b.sess.Logger().Info("lease lost as it was granted; queueing again", "lock", b.path, "cause", l.Err())
		if ctx.Err() != nil || b.sess.Err() != nil || try {
			return nil, fmt.Errorf("lock: acquire %s: %w", b.path, l.Err())
		}
	}
}

func (b *queue) acquireOnce(ctx context.Context, kind, recipe string, blocks contend.Blocker, try bool) (*Lease, error) {
	if err := b.sess.Err(); err != nil {
		return nil, fmt.Errorf("lock: acquire %s: %w", b.path, err)
	}
	e, list, err := b.q.Join(ctx, kind, b.opts.data, b.opts.watch || b.opts.revocable)
	if err != nil {
		return nil, fmt.Errorf("lock: acquire %s: %w", b.path, err)
	}
	susp, err := b.q.Wait(ctx, e, list, blocks, try, e.Suspensions)
	delay := b.opts.lockDelay > 0 && kind != ReadKind
	if err == nil && delay {
		err = b.delayAfterAbandon(ctx, e, try)
	}
	if err != nil {
		b.q.Discard(ctx, e.Path)
		if errors.Is(err, contend.ErrBlocked) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock: acquire %s: %w", b.path, err)
	}
	cfg := contend.HoldConfig{Recipe: recipe, Policy: b.sess.LossPolicy(), Lost: ErrLost, Freed: ErrReleased}
	if b.opts.policy != nil {
		cfg.Policy = *b.opts.policy
	}
	if b.opts.revocable {
		cfg.Revoked = ErrRevoked
	}
	if delay {
		cfg.ReleaseOps = b.releaseOps
	}
	return &Lease{
		h:    contend.NewHold(b.q, e, cfg, susp),
		path: b.sess.Unpath(e.Path),
	}, nil
}
