package recipes

import (
	"context"
	"errors"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
)

// SyncOnce syncs the server this session talks to with the ensemble's
// leader, once per session: the first call sends a sync (on path, chroot
// applied by the caller) and waits for it; later calls return at once;
// concurrent callers wait for the one in flight. Recipes that follow a
// Client call it before they read on a new session: after an expiry
// go-zookeeper forgets the last zxid it saw, so a new session may land on a
// server that lags behind what the previous session read. It makes one
// attempt; callers retry transient errors.
func (s *Session) SyncOnce(ctx context.Context, path string) error {
	if s.synced.Load() {
		return nil
	}
	select {
	case s.syncGate <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-s.done:
		return s.Err()
	}
	defer func() { <-s.syncGate }()
	if s.synced.Load() {
		return nil
	}
	err := core.Client{Session: (*engine)(s)}.Sync(ctx, path)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	s.synced.Store(true)
	return nil
}
