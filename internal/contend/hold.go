package contend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/clock"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/internal/obs"
)

// ErrNodeDeleted is the cause of a loss when our node was deleted while we
// held it: by another client, or by the server as it expired our session
// (the deletion can reach us before the news of the expiry does).
var ErrNodeDeleted = errors.New("contender node deleted")

func init() { obs.RegisterCause(ErrNodeDeleted, "node_deleted") }

// Hold is a held position in a queue (a lock, a permit, a term). It follows
// the session, and its own node when the entry watches it, and ends with
// ErrLost wrapping the cause, or with ErrReleased after Release. It runs no
// goroutine while held: the session calls it with its state changes and
// its node's events.
type Hold struct {
	q             *Queue
	e             *Entry
	cfg           HoldConfig
	loseOnSuspend bool
	lost          error // the recipe's ErrLost
	freed         error // the recipe's ErrReleased

	done chan struct{}

	granted time.Time

	mu        sync.Mutex
	err       error
	limit     time.Time     // when the hold must end (Limit); zero: none
	limitAt   clock.Instant // limit on the deadline clock (CLOCK_BOOTTIME: counts suspended time)
	limitWhy  error         // the cause it then ends with
	timer     *time.Timer   // ends it at limit
	expiring  bool          // expire has begun: one caller ends and deletes
	releasing bool
	suspended bool   // seen suspended, not yet reconnected
	unlisten  func() // removes the session listener
	unwatch   func() // removes the node-event listener (nil: the entry has no watch)
	// The hold's context is made on the first call to Context (most
	// holds are never asked for it): ctxOut, with its cancel func, and
	// ctxCause, the cause it is (or is to be) cancelled with.
	ctxOut   context.Context
	cancel   context.CancelCauseFunc
	ctxCause error
	onEnd    func(error) // OnEnd's fn, until the hold ends
}

// RevokeMarker is the data a revoker writes on a holder's node to ask it to
// release (Curator's revocation message, so both libraries understand it).
const RevokeMarker = "__REVOKE__"

// HoldConfig says how a Hold behaves.
type HoldConfig struct {
	Recipe        string // metric label: mutex, read, write, semaphore, election
	LoseOnSuspend bool   // the recipe's loss policy is recipes.LoseOnSuspend
	Lost          error  // the recipe's loss sentinel, wrapped with the cause
	Freed         error  // the recipe's release sentinel
	// Revoked, when set (and the entry watches its node), is the cause the
	// hold's context is cancelled with when its node's data becomes
	// RevokeMarker. The hold stays held until released.
	Revoked error
	// ReleaseOps, when set, returns operations applied in one Multi with the
	// delete of our node at Release.
	ReleaseOps func() []any
}

// NewHold starts watching e, held in q, and returns its Hold. The hold
// follows the session's state through a listener, which sees every change
// in order, and, when the entry watches its own node, that node's events
// through another (no goroutine for either). e.Suspensions is the
// session's Suspensions count when the caller decided it holds: if the
// session was suspended since, the hold re-checks its node before it is
// handed out.
func NewHold(q *Queue, e *Entry, cfg HoldConfig) *Hold {
	suspensions := e.Suspensions
	lost, freed := cfg.Lost, cfg.Freed
	h := &Hold{
		q: q, e: e, cfg: cfg, loseOnSuspend: cfg.LoseOnSuspend, lost: lost, freed: freed, granted: time.Now(),
		done: make(chan struct{}),
	}
	unlisten := q.Sess.OnStateChange(h.onState)
	var unwatch func()
	if e.Watch != nil {
		unwatch = q.Sess.OnNodeEvent(e.Path, h.onNodeEvent)
	}
	h.mu.Lock()
	h.unlisten, h.unwatch = unlisten, unwatch
	h.mu.Unlock()
	if e.Watch != nil {
		// An event that came before the listener was in place is in the
		// watch's channel (one after it may be seen twice: both harmless).
		select {
		case ev, ok := <-e.Watch:
			if ok {
				h.onNodeEvent(ev)
			}
		default:
		}
	}
	// A change before the listener was in place is seen here.
	h.onState(core.StateEvent{State: q.Sess.State(), Err: q.Sess.Err()})
	if q.Sess.Suspensions() != suspensions && h.Err() == nil {
		// Suspended and back between the decision and the listener: under
		// LoseOnSuspend the lease may already be lost; check the node.
		if h.loseOnSuspend {
			h.loseTo(core.ErrSuspended)
			h.cleanupAfterLoss()
		} else {
			h.revalidateLater()
		}
	}
	return h
}

// revalidateLater re-checks our node after a reconnect, and re-arms its
// watch when it has one, in a goroutine of the session's.
func (h *Hold) revalidateLater() {
	h.q.Sess.Go(func() { h.rearm() })
}

// onNodeEvent is the hold's listener of its own node's events (entries
// that watch their node). It runs on the connection's receive loop and
// must not block: the hold is lost when the node is deleted; after a data
// change a goroutine re-arms the watch and looks for a revocation. Session
// states are onState's: it sees them all, in order. Once Release has
// begun, node events are ignored.
func (h *Hold) onNodeEvent(ev zk.Event) {
	h.mu.Lock()
	over := h.err != nil || h.releasing
	h.mu.Unlock()
	switch {
	case over:
	case ev.Type == zk.EventNodeDeleted:
		h.loseTo(ErrNodeDeleted)
	case ev.Type == zk.EventNodeDataChanged:
		h.q.Sess.Go(h.rearmAfterChange)
	}
}

// rearmAfterChange re-arms our node's watch after its data changed, and
// cancels the hold's context when the data is a revocation.
func (h *Hold) rearmAfterChange() {
	data, ok := h.rearm()
	if ok && h.cfg.Revoked != nil && string(data) == RevokeMarker {
		h.mu.Lock()
		h.cancelLocked(h.cfg.Revoked) // held until released; Err stays nil
		h.mu.Unlock()
	}
}

// onState is the hold's session listener. It runs on the goroutine that
// saw the change and must not block.
func (h *Hold) onState(ev core.StateEvent) {
	h.mu.Lock()
	over, releasing := h.err != nil, h.releasing
	revalidate := false
	switch ev.State {
	case core.StateSuspended:
		h.suspended = true
	case core.StateReconnected, core.StateConnected:
		revalidate = h.suspended && !over && !releasing
		h.suspended = false
	}
	h.mu.Unlock()
	switch {
	case over:
	case ev.State == core.StateLost && releasing:
		h.end(h.freed) // the node ended with the session
	case ev.State == core.StateLost:
		cause := ev.Err
		if cause == nil {
			cause = h.q.Sess.Err()
		}
		h.loseTo(cause)
	case releasing:
	case ev.State == core.StateSuspended && h.loseOnSuspend:
		h.loseTo(core.ErrSuspended)
		h.cleanupAfterLoss()
	case revalidate:
		h.revalidateLater()
	}
}

// Limit makes the hold end at the latest at at (a maximum hold time), with
// ErrLost wrapping cause, and its node deleted at once so the next waiter
// is granted. Context's Deadline reports at from then on; Err checks it
// itself, so a process resumed after at sees the end on its first check.
// A limit already set is only moved earlier.
func (h *Hold) Limit(at time.Time, cause error) {
	h.mu.Lock()
	if h.err != nil || h.releasing || (!h.limit.IsZero() && !at.Before(h.limit)) {
		h.mu.Unlock()
		return
	}
	h.limit, h.limitWhy = at, cause
	h.limitAt = clock.Now().Add(time.Until(at))
	if h.timer != nil {
		h.timer.Stop()
	}
	h.timer = time.AfterFunc(time.Until(at), h.expire)
	h.mu.Unlock()
}

// Deadline returns the hold's limit, if it has one.
func (h *Hold) Deadline() (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.limit, !h.limit.IsZero()
}

// expire ends the hold at its limit and deletes its node.
func (h *Hold) expire() {
	h.mu.Lock()
	cause, over := h.limitWhy, h.err != nil || h.releasing || h.expiring
	h.expiring = true
	h.mu.Unlock()
	if over {
		return
	}
	h.loseTo(cause)
	h.mu.Lock()
	ours := errors.Is(h.err, cause)
	h.mu.Unlock()
	if ours && h.q.Sess.Err() == nil {
		h.q.Abandon(h.e.Path, "max_hold")
	}
}

// Entry returns the held queue entry.
func (h *Hold) Entry() *Entry { return h.e }

// Context is cancelled, with the reason as cause, when the hold ends or
// Release begins. Its Err checks the session's local deadline first (as
// Hold.Err does), so it never says "live" after the deadline passed.
func (h *Hold) Context() context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctxOut == nil {
		ctx, cancel := context.WithCancelCause(context.Background())
		if h.ctxCause != nil {
			cancel(h.ctxCause)
		}
		h.cancel = cancel
		h.ctxOut = core.WithChecksAndDeadline(ctx, func() { h.Err() }, h.Deadline)
	}
	return h.ctxOut
}

// cancelLocked cancels the hold's context with cause, now if it was made,
// else when it is; the first cause stays. h.mu must be held.
func (h *Hold) cancelLocked(cause error) {
	if h.ctxCause != nil {
		return
	}
	h.ctxCause = cause
	if h.cancel != nil {
		h.cancel(cause)
	}
}

// Done is closed when the hold is over: lost, or released.
func (h *Hold) Done() <-chan struct{} { return h.done }

// Err is nil until Done is closed; then the recipe's ErrReleased, or its
// ErrLost wrapping the cause. It asks the session first (Session.Err checks
// the local deadline), so once the session is over it ends the hold itself
// rather than wait for the session's listener to run: a check made after
// the deadline never says "held".
func (h *Hold) Err() error {
	h.mu.Lock()
	err, releasing := h.err, h.releasing
	past := !h.limit.IsZero() && clock.Now() >= h.limitAt
	h.mu.Unlock()
	if err != nil || releasing {
		return err
	}
	if serr := h.q.Sess.Err(); serr != nil {
		h.loseTo(serr)
	} else if past {
		h.expire()
	} else {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// OnEnd arranges for fn to be called once with the hold's Err when the
// hold ends, or at once if it has ended: without a goroutine or a context
// of its own. fn runs with the hold's lock held: it must not block nor call
// the hold. A later OnEnd replaces an earlier one not yet called.
func (h *Hold) OnEnd(fn func(error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		fn(h.err)
		return
	}
	h.onEnd = fn
}

// end records the outcome once and cancels the context.
func (h *Hold) end(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return
	}
	h.err = err
	if h.onEnd != nil {
		h.onEnd(err)
		h.onEnd = nil
	}
	var cause error
	if !errors.Is(err, h.freed) {
		cause = err
	}
	// Counted before Done closes: whoever waits on Done sees the count.
	h.q.Sess.Observer().Ended(h.cfg.Recipe, h.granted, cause)
	h.cancelLocked(err)
	close(h.done)
	if h.timer != nil {
		h.timer.Stop()
	}
	if h.unlisten != nil {
		h.unlisten()
	}
	if h.unwatch != nil {
		h.unwatch()
	}
}

func (h *Hold) loseTo(cause error) {
	h.mu.Lock()
	releasing := h.releasing
	h.mu.Unlock()
	if releasing {
		return
	}
	h.end(fmt.Errorf("%w: %w", h.lost, cause))
}

// rearm revalidates our node and, when the entry watches it, sets a new
// watch on it (whose events reach onNodeEvent) and returns its data; or
// ends the hold and returns ok=false.
func (h *Hold) rearm() (data []byte, ok bool) {
	data, err := h.revalidate()
	if err != nil {
		h.loseTo(err)
		h.cleanupAfterLoss()
		return nil, false
	}
	return data, true
}

// revalidate checks that our node still exists and is owned by our
// session, and returns its data after setting a new watch on it when the
// entry watches it (onNodeEvent sees that watch's events).
func (h *Hold) revalidate() ([]byte, error) {
	var (
		stat *zk.Stat
		data []byte
	)
	err := h.q.Sess.Retry(h.q.Sess.Context(), func(ctx context.Context) error {
		var err error
		stat, _, data, err = h.q.stat(ctx, h.e.Path, h.e.Watch != nil)
		return err
	})
	switch {
	case errors.Is(err, zk.ErrNoNode):
		return nil, ErrNodeDeleted
	case err != nil:
		if serr := h.q.Sess.Err(); serr != nil {
			return nil, serr
		}
		return nil, err
	case stat.EphemeralOwner != h.q.Sess.ID():
		return nil, fmt.Errorf("node %s now belongs to session 0x%x", h.e.Path, stat.EphemeralOwner)
	}
	return data, nil
}

// cleanupAfterLoss deletes our node after a loss while the session may
// live on, so it does not block the others until Release is called.
func (h *Hold) cleanupAfterLoss() {
	if h.q.Sess.Err() == nil {
		h.q.Abandon(h.e.Path, "after_loss")
	}
}

// Release deletes our node, retrying across disconnects until ctx is done.
// It is idempotent and safe after a loss. The hold's context is cancelled
// at once; Done closes only once the node is known to be gone (deleted, or
// its session over). If ctx ends first, Release returns its cause and the
// delete goes on in the background until it succeeds or the session ends.
func (h *Hold) Release(ctx context.Context) error {
	h.mu.Lock()
	if h.err != nil && !errors.Is(h.err, h.lost) {
		h.mu.Unlock()
		return nil // already released
	}
	if !h.releasing {
		h.releasing = true
		h.cancelLocked(h.freed)
	}
	wasLost := h.err != nil
	h.mu.Unlock()

	if h.q.Sess.Err() != nil {
		h.end(h.freed) // the node ends with the session
		return nil
	}
	o := h.q.Sess.Observer()
	if err := h.q.Sess.Retry(ctx, h.deleteNode); err != nil {
		if h.q.Sess.Err() != nil {
			h.end(h.freed)
			return nil
		}
		o.Released(h.cfg.Recipe, "failed")
		h.q.Sess.Cleanup("release "+h.e.Path, func(ctx context.Context) error {
			if err := h.deleteNode(ctx); err != nil {
				return err
			}
			o.Released(h.cfg.Recipe, "background_done")
			h.end(h.freed)
			return nil
		})
		return fmt.Errorf("release %s: %w (the delete goes on in the background)", h.e.Path, err)
	}
	o.Released(h.cfg.Recipe, "released")
	if !wasLost {
		h.end(h.freed)
	}
	return nil
}

// deleteNode deletes our node, in one Multi with cfg.ReleaseOps when set.
// A node already gone counts as deleted; if only a release op's node is
// gone, our node is deleted alone.
func (h *Hold) deleteNode(ctx context.Context) error {
	if h.cfg.ReleaseOps == nil {
		return h.q.deletePath(ctx, h.e.Path)
	}
	ops := append([]any{&zk.DeleteRequest{Path: h.e.Path, Version: -1}}, h.cfg.ReleaseOps()...)
	res, err := h.q.Sess.Multi(ctx, ops...)
	if !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	if len(res) > 0 && errors.Is(res[0].Error, zk.ErrNoNode) {
		return nil // our node is gone
	}
	// A release op found its node gone (or the reply lacked per-op
	// results): delete ours alone; the ops only tidy up.
	return h.q.deletePath(ctx, h.e.Path)
}
