package fence_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/fence"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// A holder whose lease reached its maximum hold (lock.WithMaxHold) while it
// was alive and connected is stale: once the next holder has written, each
// checker rejects a write with the expired holder's token, and the helpers
// that take the lease refuse to send it at all.
func TestMaxHoldExpiredHolderIsRejectedByEveryChecker(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := heldCtx(t)
	db := fence.PGDB(t)
	pg := fence.NewPostgres(db, fence.PGTable(t))
	require.NoError(t, pg.CreateTable(ctx))
	checkers := map[string]fence.Checker{
		"memory":    &fence.Memory{},
		"zookeeper": fence.NewZooKeeper(zkc.Session(t), root+"/fences"),
		"postgres":  pg,
	}

	old, err := lock.NewMutex(zkc.Session(t), root+"/lock", lock.WithMaxHold(300*time.Millisecond)).Acquire(ctx)
	require.NoError(t, err)
	for name, c := range checkers {
		require.NoError(t, c.Accept(ctx, "r", old.Token()), name)
	}
	next, err := lock.NewMutex(zkc.Session(t), root+"/lock").Acquire(ctx) // granted when old's hold ran out
	require.NoError(t, err)
	require.ErrorIs(t, old.Err(), lock.ErrMaxHold)
	require.Greater(t, next.Token(), old.Token())
	for name, c := range checkers {
		require.NoError(t, c.Accept(ctx, "r", next.Token()), name)
		err := c.Accept(ctx, "r", old.Token())
		require.ErrorIs(t, err, fence.ErrStale, "%s accepted the expired holder's token", name)
	}

	// The helpers that take the lease send nothing for it.
	_, err = fence.Held(old)
	require.ErrorIs(t, err, fence.ErrNotHeld)
	require.ErrorIs(t, err, lock.ErrMaxHold)
	called := false
	err = checkers["memory"].(*fence.Memory).DoHeld("r", old, func() error { called = true; return nil })
	require.ErrorIs(t, err, fence.ErrNotHeld)
	require.False(t, called)

	// And over HTTP: the middleware rejects the old token with 409.
	srv := httptest.NewServer(fence.Middleware(checkers["memory"], func(*http.Request) string { return "r" })(
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })))
	defer srv.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL, nil)
	require.NoError(t, err)
	fence.SetHeader(req.Header, old.Token())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	require.NoError(t, next.Release(ctx))
	require.False(t, errors.Is(next.Err(), lock.ErrMaxHold))
}

var _ recipes.Fenced = (*lock.Lease)(nil)
