package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/internal/obs"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// queue is what every lock recipe of this package shares: a contender queue
// at a path, and the acquisition of a place in it that no lower contender
// blocks. The recipes differ only in their node kinds and blocker rule.
//
// The contender queue itself (a contend.Queue) belongs to one session: a
// queue built on a Client makes one for each session it acquires on, and
// keeps the latest.
type queue struct {
	src   recipes.Source
	path  string
	kinds []string
	opts  options
	err   error // a construction error, returned by every call

	mu  sync.Mutex
	cur *contend.Queue // the contender queue on the latest session used
}

func newQueue(src recipes.Source, path string, kinds []string, opts []Option) *queue {
	b := &queue{src: src, path: path, kinds: kinds}
	b.err = b.init(opts)
	return b
}

func (b *queue) init(opts []Option) error {
	if err := core.Setup("lock", &b.opts, opts, recipes.CheckSource(b.src), b.path); err != nil {
		return err
	}
	if sess, ok := b.src.(*recipes.Session); ok {
		_, err := b.on(sess) // its only session: build the queue now
		return err
	}
	return nil
}

// on returns the contender queue on sess.
func (b *queue) on(sess *recipes.Session) (*contend.Queue, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil && b.cur.Sess == core.Of(sess) {
		return b.cur, nil
	}
	q, err := contend.NewQueue("lock", sess, b.path, b.kinds, b.opts.acl)
	if err != nil {
		return nil, err
	}
	b.cur = q
	return q, nil
}

// live returns a live session of src: a Session's own, or a Client's
// current one, waiting while the Client reconnects until ctx is done.
func live(ctx context.Context, src recipes.Source) (*recipes.Session, error) {
	sess, err := src.Live(ctx)
	if err == nil && sess == nil {
		err = recipes.ErrNilSession // a Source of another kind that broke its contract
	}
	return sess, err
}

// observerOf returns the metric instruments of src when it has no live
// session to give (nil, which records nothing, when it has none at all).
func observerOf(src recipes.Source) *obs.Observer {
	var sess *recipes.Session
	switch s := src.(type) {
	case *recipes.Session:
		sess = s
	case *recipes.Client:
		sess = s.Current()
	}
	if sess == nil {
		return nil
	}
	return core.Of(sess).Observer()
}

// again reports whether an acquisition on sess that failed should start
// over on src's next session: only a lasting source (a Client) carries a
// blocking acquisition from one session to the next, and only when sess is
// over and ctx is not.
func again(ctx context.Context, src recipes.Source, sess *recipes.Session, try bool) bool {
	if try || !src.Lasting() || ctx.Err() != nil || sess.Err() == nil {
		return false
	}
	sess.Logger().Info("session ended while acquiring; queueing again on the next session", "cause", sess.Err())
	return true
}

// Path returns the lock's path (relative to the session's chroot).
func (b *queue) Path() string { return b.path }

// acquire gets a live session from the source and joins the queue there
// with a node of kind, and waits until blocks says nothing blocks it (with
// try: returns ErrLocked instead of waiting). On a Client, a session that
// ends while we wait makes us queue again on the next one.
func (b *queue) acquire(ctx context.Context, kind string, blocks contend.Blocker, try bool) (*Lease, error) {
	if err := core.Check(ctx, b.err, "lock", "acquire", b.path); err != nil {
		return nil, err
	}
	start, recipe := time.Now(), recipeOf(kind)
	for {
		sess, err := live(ctx, b.src)
		if err != nil {
			err = fmt.Errorf("lock: acquire %s: %w", b.path, err)
			observerOf(b.src).Acquired(recipe, start, err, ErrLocked, nil)
			return nil, err
		}
		l, err := b.acquireAs(ctx, sess, kind, recipe, blocks, try)
		if err != nil && again(ctx, b.src, sess, try) {
			continue
		}
		core.Of(sess).Observer().Acquired(recipe, start, err, ErrLocked, nil)
		return l, err
	}
}

// acquireOn acquires on sess only (the internal mutex of a Semaphore, the
// members of a MultiLock: the caller picked the session).
func (b *queue) acquireOn(ctx context.Context, sess *recipes.Session, kind string, blocks contend.Blocker, try bool) (*Lease, error) {
	start, recipe := time.Now(), recipeOf(kind)
	l, err := b.acquireAs(ctx, sess, kind, recipe, blocks, try)
	core.Of(sess).Observer().Acquired(recipe, start, err, ErrLocked, nil)
	return l, err
}

// nodeKind is the kind our node of kind is created with: kazoo's
// WithKazooNames.
func (b *queue) nodeKind(kind string) string {
	if !b.opts.kazoo {
		return kind
	}
	if kind == ReadKind {
		return KazooReadLock
	}
	return KazooLock
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

// acquireAs acquires on sess until it holds a lease that is not already
// lost: a lease can be lost between the grant and its hand-over (the
// connection dropped under LoseOnSuspend); its node is then being deleted,
// and we queue again rather than hand out a lease that is over.
func (b *queue) acquireAs(ctx context.Context, sess *recipes.Session, kind, recipe string, blocks contend.Blocker, try bool) (*Lease, error) {
	q, err := b.on(sess)
	if err != nil {
		return nil, err
	}
	for {
		l, err := b.acquireOnce(ctx, q, kind, recipe, blocks, try)
		if err != nil || l.Err() == nil {
			return l, err
		}
		sess.Logger().Info("lease lost as it was granted; queueing again", "lock", b.path, "cause", l.Err())
		if ctx.Err() != nil || sess.Err() != nil || try {
			return nil, fmt.Errorf("lock: acquire %s: %w", b.path, l.Err())
		}
	}
}

func (b *queue) acquireOnce(ctx context.Context, q *contend.Queue, kind, recipe string, blocks contend.Blocker, try bool) (*Lease, error) {
	sess := q.Sess
	if err := sess.Err(); err != nil {
		return nil, fmt.Errorf("lock: acquire %s: %w", b.path, err)
	}
	e, list, err := q.Join(ctx, b.nodeKind(kind), b.opts.data, b.opts.watch || b.opts.revocable, blocks)
	if err != nil {
		return nil, fmt.Errorf("lock: acquire %s: %w", b.path, err)
	}
	err = q.Wait(ctx, e, list, blocks, try)
	delay := b.opts.lockDelay > 0 && kind != ReadKind
	if err == nil && delay {
		err = b.delayAfterAbandon(ctx, q, e, try)
	}
	if err != nil {
		q.Discard(ctx, e.Path)
		if errors.Is(err, contend.ErrBlocked) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock: acquire %s: %w", b.path, err)
	}
	cfg := contend.HoldConfig{Recipe: recipe, LoseOnSuspend: sess.LoseOnSuspend(), Lost: ErrLost, Freed: ErrReleased}
	if b.opts.policy != nil {
		cfg.LoseOnSuspend = *b.opts.policy == recipes.LoseOnSuspend
	}
	if b.opts.revocable {
		cfg.Revoked = ErrRevoked
	}
	if delay {
		cfg.ReleaseOps = func() []any { return releaseOps(q) }
	}
	l := &Lease{h: contend.NewHold(q, e, cfg), path: sess.Unpath(e.Path)}
	l.limit(b.opts.maxHold)
	return l, nil
}
