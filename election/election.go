package election

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Kind is the name part of candidate nodes, as in Curator's LeaderLatch:
// "_c_<guid>-latch-0000000007".
const Kind = "latch-"

// KazooKind is the name part of kazoo's Election candidates (a kazoo Lock:
// "<uuid>__lock__0000000007"). They are candidates here too, ordered with
// ours by their sequence number; WithKazooNames names ours so.
const KazooKind = core.KazooLock

var kinds = []string{Kind, KazooKind}

var (
	// ErrLost is wrapped by Term.Err, and is the cause of Term.Context, when
	// a term ends without Release.
	ErrLost = errors.New("election: leadership lost")
	// ErrReleased is Term.Err after Release.
	ErrReleased = errors.New("election: term released")
	// ErrNoLeader is returned by Leader when nobody is campaigning.
	ErrNoLeader = errors.New("election: no leader")
	// ErrNotLeader is returned by Proclaim once the term is over.
	ErrNotLeader = errors.New("election: not the leader")
)

// Election is one candidate's handle on an election. Each Acquire makes a
// new candidate node; the methods are safe for concurrent use.
type Election struct {
	src     recipes.Source
	lasting bool // src outlives its sessions (a Client)
	binder  *contend.Binder[*recipes.Session, *contend.Queue]
	path    string
	opts    options
	err     error
}

// NewElection returns a handle on the election at path (relative to the session's
// chroot) on src: a *recipes.Session, with which every method ends when
// that session ends, or a *recipes.Client, with which Observe, Leader,
// Participants and Run (WithRequeue) carry on with each new session and
// Acquire waits for a live one (see the package doc). Bad arguments are
// reported by the methods.
func NewElection(src recipes.Source, path string, opts ...Option) *Election {
	e := &Election{src: src, path: path}
	e.err = e.init(opts)
	return e
}

func (e *Election) init(opts []Option) error {
	if err := core.Setup("election", &e.opts, opts, recipes.CheckSource(e.src), e.path); err != nil {
		return err
	}
	e.lasting = e.src.Lasting()
	var err error
	e.binder, err = contend.NewBinder(e.src.Live, e.lasting, e.queueOn, contend.Fixed[*recipes.Session](e.src))
	return err
}

// Path returns the election's path.
func (e *Election) Path() string { return e.path }

func (e *Election) check(ctx context.Context, op string) error {
	return core.Check(ctx, e.err, "election", op, e.path)
}

// Acquire blocks until this candidate leads, ctx is done or the session is
// over, and returns the Term. If our node disappears while we wait (deleted
// by someone else), we join again with a new node.
//
// On a Client, Acquire waits for a live session, and if that session ends
// while we wait in the queue, joins again on the next one; it returns when
// we lead, ctx is done, the Client is closed, or the server refuses us. The
// Term is bound to the session it was won on and ends with it.
func (e *Election) Acquire(ctx context.Context) (*Term, error) {
	if err := e.check(ctx, "campaign"); err != nil {
		return nil, err
	}
	start := time.Now()
	t, b, err := e.campaign(ctx)
	if b == nil {
		return t, err // no session to count it on: the Client closed, or ctx ended first
	}
	o := core.Of(b.Sess).Observer()
	o.Acquired("election", start, err, nil, nil)
	if err == nil {
		o.Leadership("elected")
		t.h.OnEnd(func(err error) {
			if errors.Is(err, ErrReleased) {
				o.Leadership("resigned")
			} else {
				o.Leadership("lost")
			}
		})
	}
	return t, err
}

// campaign returns the term, or why none, and the binding it was last
// campaigning on (nil when it got no session).
func (e *Election) campaign(ctx context.Context) (*Term, *binding, error) {
	var b *binding
	for {
		nb, err := e.binder.Bind(ctx)
		if err != nil {
			return nil, b, fmt.Errorf("election: campaign %s: %w", e.path, err)
		}
		b = nb
		sess, q := b.Sess, b.V
		if err := sess.Err(); err != nil {
			if e.binder.Again(ctx, sess) {
				continue
			}
			return nil, b, fmt.Errorf("election: campaign %s: %w", e.path, err)
		}
		kind := Kind
		if e.opts.kazoo {
			kind = KazooKind
		}
		ent, list, err := q.Join(ctx, kind, e.opts.value, true, contend.Predecessor)
		if err != nil {
			if e.binder.Again(ctx, sess) {
				continue // the session ended: join on the next one
			}
			return nil, b, fmt.Errorf("election: campaign %s: %w", e.path, err)
		}
		err = q.Wait(ctx, ent, list, contend.Predecessor, false)
		if errors.Is(err, contend.ErrNodeGone) && sess.Err() == nil && ctx.Err() == nil {
			continue // our node was deleted: re-join, never re-assert an old node
		}
		if err != nil {
			q.Discard(ctx, ent.Path)
			if e.binder.Again(ctx, sess) {
				continue
			}
			return nil, b, fmt.Errorf("election: campaign %s: %w", e.path, err)
		}
		policy := sess.LossPolicy()
		if e.opts.policy != nil {
			policy = *e.opts.policy
		}
		t := &Term{
			sess: sess,
			h:    contend.NewHold(q, ent, contend.HoldConfig{Recipe: "election", LoseOnSuspend: policy == recipes.LoseOnSuspend, Lost: ErrLost, Freed: ErrReleased}),
			path: core.Of(sess).Unpath(ent.Path),
		}
		if t.Err() != nil && ctx.Err() == nil && (sess.Err() == nil || e.lasting) {
			continue // lost as it was granted: campaign again, never hand out an ended term
		}
		if err := t.Err(); err != nil {
			return nil, b, fmt.Errorf("election: campaign %s: %w", e.path, err)
		}
		return t, b, nil
	}
}
