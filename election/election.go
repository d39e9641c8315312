package election

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Kind is the name part of candidate nodes, as in Curator's LeaderLatch:
// "_c_<guid>-latch-0000000007".
const Kind = "latch-"

var kinds = []string{Kind}

var (
	// ErrLost is wrapped by Term.Err, and is the cause of Term.Context, when
	// a term ends without Resign.
	ErrLost = errors.New("election: leadership lost")
	// ErrResigned is Term.Err after Resign.
	ErrResigned = errors.New("election: resigned")
	// ErrNoLeader is returned by Leader when nobody is campaigning.
	ErrNoLeader = errors.New("election: no leader")
	// ErrNotLeader is returned by Proclaim once the term is over.
	ErrNotLeader = errors.New("election: not the leader")
)

// Election is one candidate's handle on an election. Each Campaign makes a
// new candidate node; the methods are safe for concurrent use.
type Election struct {
	sess *recipes.Session
	path string
	q    *contend.Queue
	opts options
	err  error
}

// New returns a handle on the election at path (relative to the session's
// chroot). Bad arguments are reported by the methods.
func New(sess *recipes.Session, path string, opts ...Option) *Election {
	e := &Election{sess: sess, path: path}
	e.err = e.init(opts)
	return e
}

func (e *Election) init(opts []Option) error {
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&e.opts); err != nil {
			return err
		}
	}
	var err error
	e.q, err = contend.NewQueue("election", e.sess, e.path, kinds, e.opts.acl)
	return err
}

// Path returns the election's path.
func (e *Election) Path() string { return e.path }

func (e *Election) check(ctx context.Context, op string) error {
	if e.err != nil {
		return e.err
	}
	if ctx == nil {
		return fmt.Errorf("election: %s %s: nil context", op, e.path)
	}
	return nil
}

// Campaign blocks until this candidate leads, ctx is done or the session is
// over, and returns the Term. If our node disappears while we wait (deleted
// by someone else), we join again with a new node.
func (e *Election) Campaign(ctx context.Context) (*Term, error) {
	if err := e.check(ctx, "campaign"); err != nil {
		return nil, err
	}
	start := time.Now()
	t, err := e.campaign(ctx)
	o := e.sess.Observer()
	o.Acquired("election", start, err, nil, nil)
	if err == nil {
		o.Leadership("elected")
		context.AfterFunc(t.Context(), func() {
			if errors.Is(context.Cause(t.Context()), ErrResigned) {
				o.Leadership("resigned")
			} else {
				o.Leadership("lost")
			}
		})
	}
	return t, err
}

func (e *Election) campaign(ctx context.Context) (*Term, error) {
	for {
		if err := e.sess.Err(); err != nil {
			return nil, fmt.Errorf("election: campaign %s: %w", e.path, err)
		}
		ent, list, err := e.q.Join(ctx, Kind, e.opts.value, true)
		if err != nil {
			return nil, fmt.Errorf("election: campaign %s: %w", e.path, err)
		}
		susp, err := e.q.Wait(ctx, ent, list, contend.Predecessor, false, ent.Suspensions)
		if errors.Is(err, contend.ErrNodeGone) && e.sess.Err() == nil && ctx.Err() == nil {
			continue // our node was deleted: re-join, never re-assert an old node
		}
		if err != nil {
			e.q.Discard(ctx, ent.Path)
			return nil, fmt.Errorf("election: campaign %s: %w", e.path, err)
		}
		policy := e.sess.LossPolicy()
		if e.opts.policy != nil {
			policy = *e.opts.policy
		}
		t := &Term{
			e:    e,
			h:    contend.NewHold(e.q, ent, contend.HoldConfig{Recipe: "election", Policy: policy, Lost: ErrLost, Freed: ErrResigned}, susp),
			path: e.sess.Unpath(ent.Path),
		}
		if t.Err() != nil && ctx.Err() == nil && e.sess.Err() == nil {
			continue // lost as it was granted: campaign again, never hand out an ended term
		}
		if err := t.Err(); err != nil {
			return nil, fmt.Errorf("election: campaign %s: %w", e.path, err)
		}
		return t, nil
	}
}
