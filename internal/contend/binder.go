package contend

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
)

// BindSession is what a Binder needs of a session (a *recipes.Session).
type BindSession interface {
	comparable
	Err() error
	SyncOnce(ctx context.Context, path string) error
}

// Bound is a recipe handle on one session: the session, what the handle
// built on it (V: a queue, a full path), and the path to sync there.
type Bound[S BindSession, V any] struct {
	Sess S
	V    V
	path string
	// synced: no sync needed (a *Session source never moves to another
	// session); else SyncOnce before the first read.
	synced bool
}

// Ready syncs the server of a new session with the ensemble leader once,
// before the handle reads on it: after an expiry go-zookeeper forgets the
// last zxid it saw, so without the sync a new session could read a state
// older than one read on the session before (a deposed leader, a member
// that left). It makes one attempt; callers retry transient errors.
func (b *Bound[S, V]) Ready(ctx context.Context) error {
	if b.synced {
		return nil
	}
	return b.Sess.SyncOnce(ctx, b.path)
}

// Binder is the part of a recipe handle that follows its source: the one
// Session it was made with, or a Client's live session, on which it builds
// what it needs anew (with build) each time the session changes. It is safe
// for concurrent use.
type Binder[S BindSession, V any] struct {
	live    func(context.Context) (S, error)
	lasting bool
	build   func(S) (V, string, error) // what to build on a session, and the path to sync
	fixed   *Bound[S, V]

	mu  sync.Mutex
	cur *Bound[S, V]
}

// Fixed returns a pointer to src if it is one Session (S), for NewBinder.
func Fixed[S BindSession](src any) *S {
	if s, ok := src.(S); ok {
		return &s
	}
	return nil
}

// NewBinder returns the Binder of a handle on a source (live: its Live;
// lasting: its Lasting). If fixed is set (the source is one Session), the
// handle is bound to it once, now.
func NewBinder[S BindSession, V any](live func(context.Context) (S, error), lasting bool,
	build func(S) (V, string, error), fixed *S) (*Binder[S, V], error) {
	b := &Binder[S, V]{live: live, lasting: lasting, build: build}
	if fixed != nil {
		v, path, err := build(*fixed)
		if err != nil {
			return nil, err
		}
		b.fixed = &Bound[S, V]{Sess: *fixed, V: v, path: path, synced: true}
	}
	return b, nil
}

// Fixed returns the binding to the one Session the handle was made with,
// or nil on a source that outlives its sessions.
func (b *Binder[S, V]) Fixed() *Bound[S, V] { return b.fixed }

// Bind returns the handle on a live session of its source: the Session it
// was made with (as it is, live or not), or the source's live session,
// which a Client waits for.
func (b *Binder[S, V]) Bind(ctx context.Context) (*Bound[S, V], error) {
	if b.fixed != nil {
		return b.fixed, nil
	}
	sess, err := b.live(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil || b.cur.Sess != sess {
		v, path, err := b.build(sess)
		if err != nil {
			return nil, err
		}
		b.cur = &Bound[S, V]{Sess: sess, V: v, path: path}
	}
	return b.cur, nil
}

// Go runs fn, a reader that streams from the handle: on the handle's one
// Session in a goroutine that session owns (false, without running fn,
// once it is closing), else in a goroutine owned by fn's ctx and the
// source.
func (b *Binder[S, V]) Go(fn func()) bool {
	if b.fixed != nil {
		return core.Of(b.fixed.Sess).Go(fn)
	}
	go fn()
	return true
}

// Again reports whether an operation that failed on sess goes on with the
// next session: the source outlives its sessions, sess is over and ctx is
// not.
func (b *Binder[S, V]) Again(ctx context.Context, sess S) bool {
	return b.lasting && ctx.Err() == nil && sess.Err() != nil
}

// OnLive runs read on the handle's live session, and again on the next
// session if that one ends meanwhile (on a lasting source). An error in
// binding is prefixed with what.
func OnLive[S BindSession, V, R any](ctx context.Context, b *Binder[S, V], what string,
	read func(context.Context, *Bound[S, V]) (R, error)) (R, error) {
	for {
		bd, err := b.Bind(ctx)
		if err != nil {
			var zero R
			return zero, fmt.Errorf("%s: %w", what, err)
		}
		r, err := read(ctx, bd)
		if err != nil && b.Again(ctx, bd.Sess) {
			continue
		}
		return r, err
	}
}

// Stream sends to out what read returns, now and after every change, until
// ctx is done or the source is over, and closes out. read runs on the
// handle's live session, after Ready, retried across disconnects, and
// returns the value and a watch that fires at the next change. A value the
// same as the last one sent (by key) is not sent again. On a lasting
// source it reads again on each new session. what names the stream in the
// WARN it logs when a read fails for good.
func Stream[S BindSession, V, T any](ctx context.Context, b *Binder[S, V], out chan<- T, what string,
	read func(context.Context, *Bound[S, V]) (T, <-chan zk.Event, error), key func(T) string) {
	defer close(out)
	var last string
	sent := false
	for {
		bd, err := b.Bind(ctx)
		if err != nil {
			return // ctx done, the Client closed, or the session is over
		}
		c := core.Of(bd.Sess)
		_, changed := c.Changed() // before reading: a change during the read is not missed
		var (
			cur   T
			watch <-chan zk.Event
		)
		err = c.Retry(ctx, func(ctx context.Context) error {
			if err := bd.Ready(ctx); err != nil {
				return err
			}
			var err error
			cur, watch, err = read(ctx, bd)
			return err
		})
		if err != nil {
			if b.Again(ctx, bd.Sess) {
				continue // read again on the next session
			}
			if ctx.Err() == nil && bd.Sess.Err() == nil {
				c.Logger().Warn(what+" stopped", "err", err)
			}
			return
		}
		if k := key(cur); !sent || k != last {
			select {
			case out <- cur:
				last, sent = k, true
			case <-ctx.Done():
				return
			case <-c.Done():
				if !b.lasting {
					return
				}
			}
			continue // read afresh before waiting: changes may have happened meanwhile
		}
		select {
		case <-watch:
		case <-changed:
		case <-ctx.Done():
			return
		case <-c.Done():
			if !b.lasting {
				return
			}
		}
	}
}
