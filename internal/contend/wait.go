package contend

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Blocker returns the contender that blocks list[me], or ok=false when
// list[me] may proceed. It sees only contenders below me in a sorted list.
type Blocker func(list []Node, me int) (blocker Node, ok bool)

// Predecessor blocks on the immediate predecessor: a mutex, a write lock.
func Predecessor(list []Node, me int) (Node, bool) {
	if me == 0 {
		return Node{}, false
	}
	return list[me-1], true
}

// Wait blocks until no contender blocks e, watching only the blocker. It
// re-lists the queue on every wake-up and every session state change, except
// in one case: when the blocker was the only contender that blocked us
// (removing it from the last listing frees us), its deletion alone frees us.
// No node can appear below ours while ours exists (sequence numbers only
// grow under a parent that cannot be removed while it has children).
//
// With try set, Wait returns ErrBlocked instead of waiting. It returns
// ErrNodeGone (or the session's end) if our node disappears.
func (q *Queue) Wait(ctx context.Context, e *Entry, list []Node, blocks Blocker, try bool) error {
	for {
		me := Index(list, e.Node.Name)
		if me < 0 {
			return q.lostErr(fmt.Errorf("%w: %s", ErrNodeGone, e.Path))
		}
		pred, blocked := blocks(list, me)
		if !blocked {
			if deletedBefore(e) {
				return q.lostErr(fmt.Errorf("%w: %s", ErrNodeGone, e.Path))
			}
			return q.Sess.Err() // nil unless the session ended meanwhile
		}
		if try {
			return ErrBlocked
		}
		// Would the blocker's deletion alone free us?
		rest := make([]Node, 0, len(list)-1)
		for _, n := range list {
			if n.Name != pred.Name {
				rest = append(rest, n)
			}
		}
		_, stillBlocked := blocks(rest, Index(rest, e.Node.Name))
		soleBlocker := !stillBlocked

		_, changed := q.Sess.Changed()
		watch, err := recipes.Call(ctx, q.Sess, func(c *zk.Conn) (<-chan zk.Event, error) {
			_, _, ch, err := c.GetW(q.Dir + "/" + pred.Name)
			return ch, err
		})
		switch {
		case errors.Is(err, zk.ErrNoNode):
			if soleBlocker {
				list = rest
				continue
			}
		case err != nil && !recipes.IsTransient(err):
			return q.lostErrOr(q.wrap("watch blocker in", err))
		case err == nil:
			select {
			case ev := <-watch:
				if ev.Type == zk.EventNodeDeleted && soleBlocker {
					list = rest
					continue
				}
			case <-changed:
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-q.Sess.Done():
				return q.Sess.Err()
			}
		}
		if list, err = q.relist(ctx); err != nil {
			return err
		}
	}
}

// relist re-reads the queue, waiting out a disconnect.
func (q *Queue) relist(ctx context.Context) ([]Node, error) {
	var list []Node
	err := recipes.Retry(ctx, q.Sess, func(ctx context.Context) error {
		var err error
		list, err = q.List(ctx)
		return err
	})
	return list, err
}

// deletedBefore reports whether our node's watch (if we keep one) already
// says the node was deleted. Wait may conclude that nothing blocks us from
// a blocker's deletion alone, without a fresh list; a client receives watch
// events in zxid order, so if our node was deleted before that, the event is
// already here. Any other event is put back for the Hold's monitor.
func deletedBefore(e *Entry) bool {
	select {
	case ev, ok := <-e.Watch:
		if !ok {
			return false
		}
		if ev.Type == zk.EventNodeDeleted {
			return true
		}
		w := make(chan zk.Event, 1)
		w <- ev
		e.Watch = w
	default:
	}
	return false
}
