package recipes_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// A background cleanup that meets an error retrying cannot cure (the
// server denies us: NoAuth) stops at once and says so at WARN, instead of
// retrying for the whole life of the session; a transient error is retried.
func TestCleanupGivesUpOnPermanentErrors(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	var logs syncBuffer
	s := zkc.Session(t, logTo(&logs, slog.LevelInfo))

	var denied atomic.Int32
	core.Of(s).Cleanup("delete /denied", func(ctx context.Context) error {
		denied.Add(1)
		return zk.ErrNoAuth
	})
	var flaky atomic.Int32
	cured := make(chan struct{})
	core.Of(s).Cleanup("delete /flaky", func(ctx context.Context) error {
		if flaky.Add(1) < 3 {
			return zk.ErrConnectionClosed
		}
		close(cured)
		return nil
	})
	select {
	case <-cured:
	case <-time.After(10 * time.Second):
		t.Fatal("a transient failure was not retried")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "cleanup gave up") {
		require.True(t, time.Now().Before(deadline), "no WARN for a cleanup that cannot succeed:\n%s", logs.String())
		time.Sleep(10 * time.Millisecond) // polling the log, not ordering
	}
	require.Contains(t, logs.String(), `what="delete /denied"`)
	require.Contains(t, logs.String(), "zk: not authenticated")
	require.Equal(t, int32(1), denied.Load(), "a NoAuth failure was retried")
	require.NoError(t, s.Err())
}
