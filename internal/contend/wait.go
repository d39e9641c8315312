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
// ErrNodeGone (or the session's end) if our node disappears, and ctx's
// cause as soon as ctx ends: a watch or list then in flight finishes in a
// goroutine of the session's, and its answer is dropped.
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
	for {
		me := Index(list, e.Node.Name)
		if me < 0 {
			return susp, q.lostErr(fmt.Errorf("%w: %s", ErrNodeGone, e.Path))
		}
		pred, blocked := blocker(list, me, blocks)
		if !blocked {
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
		turn := waitTurn{e: e, pred: q.Dir + "/" + pred.Name, sole: !stillBlocked, blocks: blocks, susp: susp}

		// The watch, the wait and the re-list take one goroutine of the
		// session's when ctx can end (go-zookeeper's calls cannot be
		// cancelled), none when it cannot.
		var r waitResult
		if ctx.Done() == nil {
			r = q.awaitBlocker(ctx, turn)
		} else {
			ch := make(chan waitResult, 1)
			if !q.Sess.Go(func() { ch <- q.awaitBlocker(ctx, turn) }) {
				return susp, q.lostErr(core.ErrClosed)
			}
			select {
			case r = <-ch:
			case <-ctx.Done():
				return susp, context.Cause(ctx)
			case <-q.Sess.Done():
				return susp, q.Sess.Err()
			}
		}
		if r.done {
			return r.susp, r.err
		}
		list, susp = r.list, r.susp
	}
}

// waitTurn is one turn of Wait's loop: our entry, the full path of the
// blocker to watch, whether its deletion alone frees us, and the
// Suspensions count the last listing rests on.
type waitTurn struct {
	e      *Entry
	pred   string
	sole   bool
	blocks Blocker
	susp   uint64
}

// waitResult is what a turn found: done (free, or err set), or a fresh
// list. Every path that sets err sets done.
type waitResult struct {
	done bool
	list []Node
	susp uint64
	err  error
}

// awaitBlocker runs one turn: it watches the blocker, waits for its
// deletion or a session state change, and then either finds us free (the
// blocker's deletion alone frees us and our node still exists) or re-lists
// the queue. It runs in Wait's goroutine when ctx cannot end, else in one
// of the session's; either way its requests go straight to go-zookeeper,
// and ctx bounds only its waits.
func (q *Queue) awaitBlocker(ctx context.Context, t waitTurn) waitResult {
	direct := context.WithoutCancel(ctx)
	_, changed := q.Sess.Changed()
	// The blocker's deletion alone frees us only on the connection the
	// last list came from: after a suspension since (before changed was
	// taken, or after: changed is then closed), the server we talk to may
	// lag the leader, and only a synced list is proof (relistAhead).
	sameConn := q.Sess.Suspensions() == t.susp
	watch, err := core.WatchOf(q.Sess.GetW(direct, t.pred))
	switch {
	case errors.Is(err, zk.ErrNoNode):
		if t.sole && sameConn && !closed(changed) {
			return q.freedByDeletion(ctx, t)
		}
	case err != nil && !core.IsTransient(err):
		return waitResult{done: true, susp: t.susp, err: q.lostErrOr(q.wrap("watch blocker in", err))}
	case err == nil:
		select {
		case ev := <-watch:
			// After a state change (a reconnect re-sends watches in no
			// particular order) only a fresh list is proof.
			if ev.Type == zk.EventNodeDeleted && t.sole && sameConn && !closed(changed) {
				return q.freedByDeletion(ctx, t)
			}
		case <-changed:
		case <-ctx.Done():
			return waitResult{done: true, susp: t.susp, err: context.Cause(ctx)}
		case <-q.Sess.Done():
			return waitResult{done: true, susp: t.susp, err: q.Sess.Err()}
		}
	}
	susp := q.Sess.Suspensions()
	list, err := q.relistAhead(ctx, t.e.Node.Seq, t.blocks, susp != t.susp)
	return waitResult{done: err != nil, list: list, susp: susp, err: err}
}

// freedByDeletion ends a turn in which the blocker's deletion alone freed
// us: we are free if our node still exists.
func (q *Queue) freedByDeletion(ctx context.Context, t waitTurn) waitResult {
	susp := t.susp
	if t.e.Watch == nil {
		susp = q.Sess.Suspensions()
	}
	gone, err := q.ownNodeGone(ctx, t.e)
	switch {
	case err != nil:
	case gone:
		err = q.lostErr(fmt.Errorf("%w: %s", ErrNodeGone, t.e.Path))
	default:
		err = q.Sess.Err() // nil unless the session ended meanwhile
	}
	return waitResult{done: true, susp: susp, err: err}
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
// nothing, so its silence proves nothing and we read. The read goes straight
// to go-zookeeper (awaitBlocker's goroutine); ctx bounds only the waits
// between tries.
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
		exists, _, err = q.Sess.Exists(context.WithoutCancel(ctx), e.Path) // awaitBlocker's: straight to go-zookeeper
		return err
	})
	if err != nil {
		return false, err
	}
	return !exists, nil
}

// relistAhead re-reads what decides whether the contender with sequence
// number seq is blocked (Ahead), waiting out a disconnect. The list goes
// straight to go-zookeeper (awaitBlocker's goroutine); ctx bounds only the
// waits between tries.
//
// With synced (the session was suspended since the last list), and on
// every try after a failed one, the list is read after a sync: the server
// the session reconnected to may lag behind the leader, and its list could
// still show our node, or miss a blocker, after the leader deleted or
// created it (seen once in the verification suite: the nemesis had the
// session closed while it reconnected, and a lagging server's list granted
// a read lock 6 ms after another server showed its node deleted). The
// sync brings that server up to every write the leader committed before.
func (q *Queue) relistAhead(ctx context.Context, seq int64, blocks Blocker, synced bool) ([]Node, error) {
	var list []Node
	err := q.Sess.Retry(ctx, func(ctx context.Context) error {
		direct := context.WithoutCancel(ctx) // awaitBlocker's: straight to go-zookeeper
		read := q.children
		if synced {
			read = q.syncedChildren
		}
		children, err := read(direct)
		if err != nil {
			synced = true // the next try may be on another server
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
