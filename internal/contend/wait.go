package contend

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
)

// Blocker tells whether contender n, ahead of us in the queue, blocks us.
// We wait on the nearest contender ahead of us that blocks us, and are
// free when there is none.
type Blocker func(n Node) bool

// Predecessor says that every contender ahead blocks: we wait on our
// immediate predecessor (a mutex, a write lock, an election term).
func Predecessor(Node) bool { return true }

// Unblocked says that no contender ahead blocks: Join then returns our node
// alone, for a caller that decides by other means (a semaphore counts).
func Unblocked(Node) bool { return false }

// blocker returns the nearest contender below list[me] that blocks it, or
// ok=false when list[me] may proceed.
func blocker(list []Node, me int, blocks Blocker) (Node, bool) {
	for i := me - 1; i >= 0; i-- {
		if blocks(list[i]) {
			return list[i], true
		}
	}
	return Node{}, false
}

// Wait blocks until no contender blocks e, watching only the nearest
// contender ahead that blocks it (list is Join's, or Ahead's). It
// re-lists the queue on every wake-up and every session state change, except
// in one case: when the blocker was the only contender that blocked us
// (removing it from the last listing frees us) and the session did not
// change state meanwhile, its deletion frees us without a fresh list,
// provided our own node still exists: no node can appear below ours while
// ours exists (sequence numbers only grow under a parent that cannot be
// removed while it has children). That proof is a check of our node's
// watch when we keep one (events arrive in zxid order on one connection),
// else one Exists, which is cheaper for the server than a children list.
//
// With try set, Wait returns ErrBlocked instead of waiting. It returns
// ErrNodeGone (or the session's end) if our node disappears.
//
// e.Suspensions is the session's Suspensions count read before list was
// read (Join sets it). Wait leaves in it the count read before the reads
// its final decision rests on, for NewHold: a suspension after that point
// is one the hold must look at.
func (q *Queue) Wait(ctx context.Context, e *Entry, list []Node, blocks Blocker, try bool) error {
	susp, err := q.wait(ctx, e, list, blocks, try, e.Suspensions)
	e.Suspensions = susp
	return err
}

func (q *Queue) wait(ctx context.Context, e *Entry, list []Node, blocks Blocker, try bool, susp uint64) (uint64, error) {
	fresh := true // list is a listing, not a listing minus a deleted blocker
	for {
		me := Index(list, e.Node.Name)
		if me < 0 {
			return susp, q.lostErr(fmt.Errorf("%w: %s", ErrNodeGone, e.Path))
		}
		pred, blocked := blocker(list, me, blocks)
		if !blocked {
			if !fresh {
				if e.Watch == nil {
					susp = q.Sess.Suspensions()
				}
				gone, err := q.ownNodeGone(ctx, e)
				if err != nil {
					return susp, err
				}
				if gone {
					return susp, q.lostErr(fmt.Errorf("%w: %s", ErrNodeGone, e.Path))
				}
			}
			return susp, q.Sess.Err() // nil unless the session ended meanwhile
		}
		if try {
			return susp, ErrBlocked
		}
		// Would the blocker's deletion alone free us?
		rest := make([]Node, 0, len(list)-1)
		for _, n := range list {
			if n.Name != pred.Name {
				rest = append(rest, n)
			}
		}
		_, stillBlocked := blocker(rest, Index(rest, e.Node.Name), blocks)
		soleBlocker := !stillBlocked

		_, changed := q.Sess.Changed()
		watch, err := core.WatchOf(q.Sess.GetW(ctx, q.Dir+"/"+pred.Name))
		switch {
		case errors.Is(err, zk.ErrNoNode):
			if soleBlocker && !closed(changed) {
				list, fresh = rest, false
				continue
			}
		case err != nil && !core.IsTransient(err):
			return susp, q.lostErrOr(q.wrap("watch blocker in", err))
		case err == nil:
			select {
			case ev := <-watch:
				// After a state change (a reconnect re-sends watches in no
				// particular order) only a fresh list is proof.
				if ev.Type == zk.EventNodeDeleted && soleBlocker && !closed(changed) {
					list, fresh = rest, false
					continue
				}
			case <-changed:
			case <-ctx.Done():
				return susp, context.Cause(ctx)
			case <-q.Sess.Done():
				return susp, q.Sess.Err()
			}
		}
		susp = q.Sess.Suspensions()
		if list, err = q.relistAhead(ctx, e.Node.Seq, blocks); err != nil {
			return susp, err
		}
		fresh = true
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ownNodeGone tells whether our node was deleted: from its watch when we
// keep one and it is still armed, else by reading it. A watch that fired for
// another event (a data change) is spent: a later deletion would send
// nothing, so its silence proves nothing and we read.
func (q *Queue) ownNodeGone(ctx context.Context, e *Entry) (bool, error) {
	if e.Watch != nil {
		switch watchState(e) {
		case watchDeleted:
			return true, nil
		case watchArmed:
			return false, nil
		}
	}
	var exists bool
	err := q.Sess.Retry(ctx, func(ctx context.Context) error {
		var err error
		exists, _, err = q.Sess.Exists(ctx, e.Path)
		return err
	})
	if err != nil {
		return false, err
	}
	return !exists, nil
}

// relistAhead re-reads what decides whether the contender with sequence
// number seq is blocked (Ahead), waiting out a disconnect.
func (q *Queue) relistAhead(ctx context.Context, seq int64, blocks Blocker) ([]Node, error) {
	var list []Node
	err := q.Sess.Retry(ctx, func(ctx context.Context) error {
		children, err := q.children(ctx)
		if err != nil {
			return q.wrap("list", err)
		}
		list = Ahead(children, q.Kinds, seq, blocks)
		return nil
	})
	return list, err
}

type ownWatch int

const (
	watchArmed   ownWatch = iota // no event yet: a deletion would have arrived
	watchDeleted                 // the node was deleted
	watchSpent                   // fired for another event, or closed: proves nothing
)

// watchState reads our node's watch without blocking. A client receives
// watch events in zxid order, so when Wait concludes from a blocker's
// deletion alone that nothing blocks us, a deletion of our node before it
// is already here, as long as the watch was still armed. An event other
// than a deletion is put back for NewHold, which reads it.
func watchState(e *Entry) ownWatch {
	select {
	case ev, ok := <-e.Watch:
		if !ok {
			return watchSpent
		}
		if ev.Type == zk.EventNodeDeleted {
			return watchDeleted
		}
		w := make(chan zk.Event, 1)
		w <- ev
		e.Watch = w
		return watchSpent
	default:
		return watchArmed
	}
}
