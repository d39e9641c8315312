package lock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// ErrRevoked is the cause of a lease's Context when another client asked
// the holder to release (Revoke) and the lease was acquired WithRevocable.
var ErrRevoked = errors.New("lock: release requested by a revoker")

// RevokeMessage is the data Revoke writes on a holder's node: Curator's
// revocation message, so Curator holders made revocable honour it too.
const RevokeMessage = contend.RevokeMarker

var revokeKinds = []string{Kind, ReadKind, WriteKind, KazooLock, KazooReadLock}

// Revoke asks the current holders of the lock at path (a Mutex, or an
// RWMutex's writer or leading readers) to release it, by writing
// RevokeMessage on their nodes. Holders that acquired WithRevocable see
// their lease Context cancelled with ErrRevoked and decide when to release;
// others do not notice.
//
// With breakAfter > 0 it then waits up to breakAfter for those holders to
// release, and deletes the nodes of those that did not (a forced break):
// the next contender then takes the lock with a larger token, which fences
// any write the broken holder still makes; a WithRevocable or WithNodeWatch
// holder also loses its lease at once (ErrNodeDeleted). It returns the
// holders it asked, and whether it had to break the lock.
//
// src is a *recipes.Session or a *recipes.Client; with a Client, Revoke
// does all its work on one session (the current one, waiting while there
// is none) and fails if that session ends meanwhile.
func Revoke(ctx context.Context, src recipes.Source, path string, breakAfter time.Duration) (holders []Contender, broken bool, err error) {
	b := newQueue(src, path, revokeKinds, nil)
	if b.err != nil {
		return nil, false, b.err
	}
	if ctx == nil {
		return nil, false, fmt.Errorf("lock: revoke %s: nil context", path)
	}
	sess, err := live(ctx, src)
	if err != nil {
		return nil, false, fmt.Errorf("lock: revoke %s: %w", path, err)
	}
	q, err := b.on(sess)
	if err != nil {
		return nil, false, err
	}
	all, err := b.contendersOn(ctx, q)
	if err != nil {
		return nil, false, err
	}
	holders = currentHolders(all)
	for _, h := range holders {
		full := q.Dir + "/" + h.Name
		_, err := core.Of(sess).Set(ctx, full, []byte(RevokeMessage), -1)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			return holders, false, fmt.Errorf("lock: revoke %s: %w", path, err)
		}
	}
	if breakAfter <= 0 {
		return holders, false, nil
	}
	broken, err = Break(ctx, sess, path, holders, breakAfter)
	return holders, broken, err
}

// Break waits up to after for holders (from Contenders, at the lock at
// path) to release, then deletes the nodes of those that have not (a
// forced break), and reports whether it deleted any. The next contender
// then takes the lock with a larger token, which fences any write a broken
// holder still makes. Revoke with breakAfter > 0 uses it; call it directly
// to break a lock without asking, or after asking only some holders. src
// is a *recipes.Session or a *recipes.Client (whose current session, once
// it has one, does the work).
func Break(ctx context.Context, src recipes.Source, path string, holders []Contender, after time.Duration) (broken bool, err error) {
	b := newQueue(src, path, revokeKinds, nil)
	if b.err != nil {
		return false, b.err
	}
	if ctx == nil {
		return false, fmt.Errorf("lock: break %s: nil context", path)
	}
	sess, err := live(ctx, src)
	if err != nil {
		return false, fmt.Errorf("lock: break %s: %w", path, err)
	}
	q, err := b.on(sess)
	if err != nil {
		return false, err
	}
	deadline := time.NewTimer(after)
	defer deadline.Stop()
	for _, h := range holders {
		if !waitDeleted(ctx, sess, q.Dir+"/"+h.Name, deadline.C) {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return false, context.Cause(ctx)
	}
	for _, h := range holders {
		full := q.Dir + "/" + h.Name
		err := core.Of(sess).Delete(ctx, full, -1)
		switch {
		case errors.Is(err, zk.ErrNoNode):
		case err != nil:
			return broken, fmt.Errorf("lock: break %s: %w", path, err)
		default:
			broken = true
		}
	}
	return broken, nil
}

// waitDeleted waits until the node at full is deleted; it returns false
// when the deadline, ctx or the session ended the wait first. Other events
// (its data changed again) only re-arm the watch.
func waitDeleted(ctx context.Context, sess *recipes.Session, full string, deadline <-chan time.Time) bool {
	for {
		_, changed := core.Of(sess).Changed()
		w, err := core.WatchOf(core.Of(sess).GetW(ctx, full))
		switch {
		case errors.Is(err, zk.ErrNoNode):
			return true
		case err != nil && !recipes.IsTransient(err):
			return false
		}
		select {
		case <-w: // nil on a transient error: wait for the state change
		case <-changed:
		case <-deadline:
			return false
		case <-ctx.Done():
			return false
		case <-sess.Done():
			return false
		}
	}
}

// currentHolders returns who holds the lock according to the queue: the
// first contender, or every reader ahead of the first writer.
func currentHolders(all []Contender) []Contender {
	if len(all) == 0 {
		return nil
	}
	reader := func(c Contender) bool { return c.Kind == ReadKind || c.Kind == KazooReadLock }
	if !reader(all[0]) {
		return all[:1]
	}
	n := 0
	for n < len(all) && reader(all[n]) {
		n++
	}
	return all[:n]
}
