package barrier_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/barrier"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

func newClient(t *testing.T, zkc *zktest.Cluster) *recipes.Client {
	t.Helper()
	c, err := recipes.NewClient(zkc.Addrs(), []recipes.Option{recipes.WithSessionTimeout(2 * time.Second), recipes.WithServerTickTime(200 * time.Millisecond)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// A gate's Wait on a Client carries on across a lost session and returns
// when the gate opens; a DoubleBarrier participant whose session was lost
// counts as having left and can enter the next round on the new session.
func TestBarriersOnClientAcrossExpiry(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newClient(t, zkc)

	gate := barrier.NewBarrier(c, root+"/gate")
	require.NoError(t, gate.Set(ctx))
	waited := make(chan error, 1)
	go func() { waited <- gate.Wait(ctx) }()
	s1, err := c.Live(ctx)
	require.NoError(t, err)
	zkc.Expire(t, s1)
	s2, err := c.Live(ctx)
	for err == nil && s2 == s1 {
		<-s1.Done()
		s2, err = c.Live(ctx)
	}
	require.NoError(t, err)
	select {
	case err := <-waited:
		t.Fatalf("Wait returned while the gate was closed: %v", err)
	default:
	}
	require.NoError(t, barrier.NewBarrier(zkc.Session(t), root+"/gate").Remove(ctx))
	select {
	case err := <-waited:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Wait did not return after the gate opened")
	}

	// DoubleBarrier: two participants, one on the Client.
	other := barrier.NewDoubleBarrier(zkc.Session(t), root+"/double", 2)
	mine := barrier.NewDoubleBarrier(c, root+"/double", 2)
	entered := make(chan error, 2)
	go func() { entered <- other.Enter(ctx) }()
	go func() { entered <- mine.Enter(ctx) }()
	for range 2 {
		require.NoError(t, <-entered)
	}
	s2, err = c.Live(ctx)
	require.NoError(t, err)
	zkc.Expire(t, s2) // mine dies inside the round: it counts as having left
	require.NoError(t, other.Leave(ctx))
	require.Error(t, mine.Leave(ctx), "the session mine entered on is over")
	// The next round, mine on the Client's new session.
	go func() { entered <- other.Enter(ctx) }()
	go func() { entered <- mine.Enter(ctx) }()
	for range 2 {
		require.NoError(t, <-entered)
	}
	left := make(chan error, 2)
	go func() { left <- other.Leave(ctx) }()
	go func() { left <- mine.Leave(ctx) }()
	for range 2 {
		require.NoError(t, <-left)
	}
}
