package barrier_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/barrier"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// Rounds on one path must be independent (issue #10): nothing a round
// leaves behind when its participants die may block the next round, and a
// slow leaver of one round may not touch the next.

// memberCount returns how many participant nodes are under root (the
// server's view), -1 when root does not exist.
func memberCount(obs *zk.Conn, root string) int {
	ch, _, err := obs.Children(root)
	if errors.Is(err, zk.ErrNoNode) {
		return -1
	}
	n := 0
	for _, c := range ch {
		if strings.Contains(c, barrier.MemberKind) {
			n++
		}
	}
	return n
}

// lowestOwner returns the session that owns the lowest member node.
func lowestOwner(t *testing.T, obs *zk.Conn, root string) int64 {
	t.Helper()
	ch, _, err := obs.Children(root)
	require.NoError(t, err)
	lowest := ""
	for _, c := range ch {
		if strings.Contains(c, barrier.MemberKind) && (lowest == "" || c[len(c)-10:] < lowest[len(lowest)-10:]) {
			lowest = c
		}
	}
	require.NotEmpty(t, lowest, "no member nodes")
	_, st, err := obs.Get(root + "/" + lowest)
	require.NoError(t, err)
	return st.EphemeralOwner
}

// enterAll runs Enter on every participant at once and returns their errors.
func enterAll(ctx context.Context, t *testing.T, ds ...*barrier.DoubleBarrier) []error {
	t.Helper()
	errs := make([]chan error, len(ds))
	for i, d := range ds {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- d.Enter(ctx) }()
	}
	out := make([]error, len(ds))
	for i := range ds {
		select {
		case out[i] = <-errs[i]:
		case <-time.After(patience):
			t.Fatalf("Enter of participant %d hung", i)
		}
	}
	return out
}

// leaveAll runs Leave on every participant at once and requires success.
func leaveAll(ctx context.Context, t *testing.T, ds ...*barrier.DoubleBarrier) {
	t.Helper()
	errs := make(chan error, len(ds))
	for _, d := range ds {
		go func() { errs <- d.Leave(ctx) }()
	}
	for range ds {
		select {
		case err := <-errs:
			require.NoError(t, err)
		case <-time.After(patience):
			t.Fatal("Leave hung")
		}
	}
}

// requireFreshRound checks that a new round of n participants on root
// opens, is closed to one more, and leaves nothing behind.
func requireFreshRound(ctx context.Context, t *testing.T, zkc *zktest.Cluster, root string, n int) {
	t.Helper()
	ds := make([]*barrier.DoubleBarrier, n)
	for i := range ds {
		ds[i] = barrier.NewDoubleBarrier(zkc.Session(t), root, n)
	}
	for i, err := range enterAll(ctx, t, ds...) {
		require.NoError(t, err, "participant %d of the next round", i)
	}
	extra := barrier.NewDoubleBarrier(zkc.Session(t), root, n)
	require.ErrorIs(t, extra.Enter(ctx), barrier.ErrFull, "the next round is full at n")
	leaveAll(ctx, t, ds...)
	obs := zkc.Conn(t)
	ch, _, err := obs.Children(root)
	if !errors.Is(err, zk.ErrNoNode) {
		require.NoError(t, err)
		require.Empty(t, ch, "nodes left behind by the next round")
	}
}

// Every participant's session dies after the barrier opened: nobody is
// left to clean up, and the next round on the path must still work.
func TestDoubleBarrierNextRoundAfterAllDied(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	const n = 2
	s1, s2 := zkc.Session(t), zkc.Session(t)
	a := barrier.NewDoubleBarrier(s1, root, n)
	b := barrier.NewDoubleBarrier(s2, root, n)
	for _, err := range enterAll(ctx, t, a, b) {
		require.NoError(t, err)
	}
	zkc.Expire(t, s1)
	zkc.Expire(t, s2)
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { return memberCount(obs, root) <= 0 })

	requireFreshRound(ctx, t, zkc, root, n)
}

// The last leaver's session dies before it is done: the other participant
// gave up waiting in Leave (its ctx ended), then the last one's session
// expired. The next round must work.
func TestDoubleBarrierNextRoundAfterLastLeaverDied(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	const n = 2
	sa, sb := zkc.Session(t), zkc.Session(t)
	a := barrier.NewDoubleBarrier(sa, root, n)
	b := barrier.NewDoubleBarrier(sb, root, n)
	for _, err := range enterAll(ctx, t, a, b) {
		require.NoError(t, err)
	}
	// The highest member leaves first: it deletes its node, then waits
	// for the lowest to go, and stops waiting. The lowest is the last.
	leaver, last := b, sa
	if lowestOwner(t, obs, root) == sb.ID() {
		leaver, last = a, sb
	}
	lctx, cancel := context.WithCancel(ctx)
	left := make(chan error, 1)
	go func() { left <- leaver.Leave(lctx) }()
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { return memberCount(obs, root) == 1 })
	cancel()
	select {
	case err := <-left:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(patience):
		t.Fatal("Leave ignored its cancelled ctx")
	}
	// The last participant dies before it leaves.
	zkc.Expire(t, last)
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { return memberCount(obs, root) <= 0 })

	requireFreshRound(ctx, t, zkc, root, n)
}

// A slow leaver of round k (its Leave resumes after round k+1 began) must
// neither wait for round k+1's participants nor touch round k+1's state.
func TestDoubleBarrierSlowLeaverDoesNotTouchNextRound(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	const n = 2
	a := barrier.NewDoubleBarrier(zkc.Session(t), root, n)
	b := barrier.NewDoubleBarrier(zkc.Session(t), root, n)
	entered := make(chan error, 1)
	go func() { entered <- a.Enter(ctx) }() // a's node is the lowest
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { return memberCount(obs, root) == 1 })
	require.NoError(t, b.Enter(ctx))
	require.NoError(t, <-entered)

	// Round k: b (the highest) deletes its node and waits for a, but gives
	// up before a leaves; a leaves and round k is over.
	lctx, cancel := context.WithCancel(ctx)
	left := make(chan error, 1)
	go func() { left <- b.Leave(lctx) }()
	zktest.WaitUntil(t, patience, "server state is reached", func() bool { return memberCount(obs, root) == 1 })
	cancel()
	select {
	case err := <-left:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(patience):
		t.Fatal("Leave ignored its cancelled ctx")
	}
	require.NoError(t, a.Leave(ctx))

	// Round k+1 opens on the same path.
	c := barrier.NewDoubleBarrier(zkc.Session(t), root, n)
	d := barrier.NewDoubleBarrier(zkc.Session(t), root, n)
	for _, err := range enterAll(ctx, t, c, d) {
		require.NoError(t, err)
	}
	before, _, err := obs.Children(root)
	require.NoError(t, err)

	// The slow leaver of round k finishes: everyone of its round is gone,
	// so it returns at once, without waiting for round k+1.
	sctx, scancel := context.WithTimeout(ctx, patience)
	defer scancel()
	require.NoError(t, b.Leave(sctx), "the slow leaver of round k waited for round k+1")

	// Round k+1 is untouched: same nodes, still full, and it ends normally.
	after, _, err := obs.Children(root)
	require.NoError(t, err)
	require.ElementsMatch(t, before, after, "the slow leaver changed round k+1's nodes")
	late := barrier.NewDoubleBarrier(zkc.Session(t), root, n)
	require.ErrorIs(t, late.Enter(ctx), barrier.ErrFull)
	leaveAll(ctx, t, c, d)
	ch, _, err := obs.Children(root)
	if !errors.Is(err, zk.ErrNoNode) {
		require.NoError(t, err)
		require.Empty(t, ch, "nodes left behind")
	}
}

// A node that looks like a round marker but does not list member nodes is
// not ours: it neither blocks a round nor gets deleted.
func TestDoubleBarrierIgnoresForeignMarker(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	obs := zkc.Conn(t)
	require.NoError(t, barrier.NewBarrier(zkc.Session(t), root).Set(ctx)) // creates root
	foreign := root + "/" + barrier.MarkerPrefix + "0000000000-"
	_, err := obs.Create(foreign, []byte("not a member list"), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)

	a := barrier.NewDoubleBarrier(zkc.Session(t), root, 2)
	b := barrier.NewDoubleBarrier(zkc.Session(t), root, 2)
	for _, err := range enterAll(ctx, t, a, b) {
		require.NoError(t, err)
	}
	leaveAll(ctx, t, a, b)
	ok, _, err := obs.Exists(foreign)
	require.NoError(t, err)
	require.True(t, ok, "a foreign node was deleted")
	ch, _, err := obs.Children(root)
	require.NoError(t, err)
	require.Equal(t, []string{barrier.MarkerPrefix + "0000000000-"}, ch, "nodes left behind")
}
