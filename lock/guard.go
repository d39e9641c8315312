package lock

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// ErrNotHeld is wrapped by the error of a guarded write that was not
// applied because the lease's node no longer exists.
var ErrNotHeld = errors.New("lock: lease no longer held")

// Guard applies ops (*zk.CreateRequest, *zk.SetDataRequest,
// *zk.DeleteRequest, *zk.CheckVersionRequest, with full paths) atomically
// in one ZooKeeper Multi that first checks that our contender node still
// exists. As no contender can appear before ours while it exists, the
// writes commit only while we hold the lock: a holder that lost its lock
// (even one that does not know it yet) cannot apply them. It returns the
// responses of ops (without the check's), or an error wrapping ErrNotHeld
// when the check failed, or the first failing op's error.
//
// Guard is not retried across a disconnect: a Multi whose reply is lost may
// have been applied, and only the caller knows how to tell.
func (l *Lease) Guard(ctx context.Context, ops ...any) ([]zk.MultiResponse, error) {
	if ctx == nil {
		return nil, fmt.Errorf("lock: guarded write under %s: nil context", l.path)
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("lock: guarded write under %s: %w: %w", l.path, ErrNotHeld, err)
	}
	sess := l.h.Session()
	all := append([]any{&zk.CheckVersionRequest{Path: l.h.Entry().Path, Version: -1}}, ops...)
	res, err := sess.Multi(ctx, all...)
	if len(res) > 0 && res[0].Error != nil {
		return nil, fmt.Errorf("lock: guarded write under %s: %w (%w)", l.path, ErrNotHeld, res[0].Error)
	}
	if err != nil {
		return nil, fmt.Errorf("lock: guarded write under %s: %w", l.path, err)
	}
	return res[1:], nil
}
