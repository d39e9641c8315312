package membership_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/membership"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// newClient returns a Client on addrs (T = 2 s, the servers' tick), closed
// by t.Cleanup.
func newClient(t *testing.T, addrs []string) *recipes.Client {
	t.Helper()
	c, err := recipes.NewClient(addrs, []recipes.Option{
		recipes.WithSessionTimeout(2 * time.Second),
		recipes.WithServerTickTime(200 * time.Millisecond),
	})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func liveSession(t *testing.T, c *recipes.Client) *recipes.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), patience)
	defer cancel()
	s, err := c.Live(ctx)
	require.NoError(t, err, "no live session")
	return s
}

// waitMember waits until the group lists id, owned by a session for which
// owner holds, and returns it.
func waitMember(t *testing.T, g *membership.Group, id, what string, owner func(int64) bool) membership.Member {
	t.Helper()
	deadline := time.Now().Add(2 * patience)
	for {
		ms, err := g.Members(t.Context())
		require.NoError(t, err)
		for _, m := range ms {
			if m.ID == id && owner(m.Session) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: members %+v", what, ms)
		}
		time.Sleep(20 * time.Millisecond) // polling server state
	}
}

func stillMember(t *testing.T, m *membership.Membership) {
	t.Helper()
	select {
	case <-m.Done():
		t.Fatalf("membership ended: %v", m.Err())
	default:
	}
	require.NoError(t, m.Err())
}

// A member on a Client whose session expires creates its node again, with
// its data, on the Client's new session; an observer sees it leave and
// come back. Leave then ends it for good.
func TestJoinOnClientStaysAfterExpiry(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	c := newClient(t, zkc.Addrs())
	observer := membership.NewGroup(zkc.Session(t), root)
	changes := observer.Watch(ctx)
	require.Empty(t, next(t, changes))

	m, err := membership.NewGroup(c, root).Acquire(ctx, "worker-1", []byte("10.0.0.1:80"))
	require.NoError(t, err)
	require.Equal(t, []string{"worker-1"}, next(t, changes))
	s1 := liveSession(t, c)
	ms, err := observer.Members(ctx)
	require.NoError(t, err)
	require.Equal(t, s1.ID(), ms[0].Session)

	zkc.Expire(t, s1)
	require.Empty(t, next(t, changes), "the expired session's node goes")
	require.Equal(t, []string{"worker-1"}, next(t, changes), "the member comes back")
	back := waitMember(t, observer, "worker-1", "back on a new session", func(id int64) bool { return id != s1.ID() })
	require.Equal(t, "10.0.0.1:80", string(back.Data))
	require.Equal(t, liveSession(t, c).ID(), back.Session, "on the Client's session")
	stillMember(t, m)

	require.NoError(t, m.Release(ctx))
	require.ErrorIs(t, m.Err(), membership.ErrReleased)
	require.Empty(t, next(t, changes), "gone after Leave")
	waitMembers(t, observer, nil)
}

// A member on a Client partitioned past its local deadline: its session
// ends by the deadline, the membership does not; after the partition heals
// it joins again on a new session, once the old session's node is gone
// (the server deletes it when it hears the old session's close, or expires
// it).
func TestJoinOnClientStaysAfterPartition(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	p := zkc.Proxy(t)
	c := newClient(t, p.Addrs())
	observer := membership.NewGroup(zkc.Session(t), root)
	m, err := membership.NewGroup(c, root).Acquire(ctx, "worker-2", []byte("d"))
	require.NoError(t, err)
	s1 := liveSession(t, c)
	waitMember(t, observer, "worker-2", "joined", func(id int64) bool { return id == s1.ID() })

	p.Set(zktest.Blackhole)
	select {
	case <-s1.Done():
		require.ErrorIs(t, s1.Err(), recipes.ErrDeadline)
	case <-time.After(s1.Timeout() + time.Second):
		t.Fatal("the session outlived its deadline while partitioned")
	}
	stillMember(t, m)
	p.Set(zktest.Pass)
	back := waitMember(t, observer, "worker-2", "back after the partition", func(id int64) bool { return id != s1.ID() })
	require.Equal(t, liveSession(t, c).ID(), back.Session)
	require.Equal(t, "d", string(back.Data))
	stillMember(t, m)
	require.NoError(t, m.Release(ctx))
	waitMembers(t, observer, nil)
}

// A member on a Client whose node someone else deletes creates it again.
func TestJoinOnClientRecreatesDeletedNode(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	c := newClient(t, zkc.Addrs())
	m, err := membership.NewGroup(c, root).Acquire(ctx, "w", []byte("v"))
	require.NoError(t, err)
	conn := zkc.Conn(t)
	_, st, err := conn.Get(root + "/w")
	require.NoError(t, err)

	require.NoError(t, conn.Delete(root+"/w", -1))
	deadline := time.Now().Add(patience)
	for {
		data, again, err := conn.Get(root + "/w")
		if err == nil && again.Czxid != st.Czxid {
			require.Equal(t, "v", string(data))
			require.Equal(t, st.EphemeralOwner, again.EphemeralOwner, "on the same, live, session")
			break
		}
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			t.Fatal(err)
		}
		require.True(t, time.Now().Before(deadline), "node not created again")
		time.Sleep(10 * time.Millisecond) // polling server state
	}
	stillMember(t, m)
	require.NoError(t, m.Release(ctx))
	_, err = conn.Sync(root)
	require.NoError(t, err)
	_, _, err = conn.Get(root + "/w")
	require.ErrorIs(t, err, zk.ErrNoNode, "not created again after Leave")
}

// Watch on a Client keeps streaming across an expiry of its own session:
// a change made meanwhile is seen once it reconnects, later changes too,
// and no list is sent twice in a row.
func TestWatchOnClientAcrossExpiry(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	c := newClient(t, zkc.Addrs())
	changes := membership.NewGroup(c, root).Watch(ctx)
	var seen [][]string
	recv := func(want []string, what string) {
		t.Helper()
		got := next(t, changes)
		seen = append(seen, got)
		require.Equal(t, want, got, what)
	}
	recv([]string{}, "empty")
	w1, err := membership.NewGroup(zkc.Session(t), root).Acquire(ctx, "a", nil)
	require.NoError(t, err)
	recv([]string{"a"}, "a joined")

	s1 := liveSession(t, c)
	zkc.Expire(t, s1)
	_, err = membership.NewGroup(zkc.Session(t), root).Acquire(ctx, "b", nil)
	require.NoError(t, err)
	recv([]string{"a", "b"}, "b joined around the watcher's expiry")
	require.NoError(t, w1.Release(ctx))
	recv([]string{"b"}, "a left after the watcher reconnected")
	require.NotEqual(t, s1.ID(), liveSession(t, c).ID())

	cancel()
	select {
	case ms, ok := <-changes:
		require.False(t, ok, "value after cancel: %v", ms)
	case <-time.After(patience):
		t.Fatal("watch not closed after its ctx was cancelled")
	}
	t.Logf("lists seen: %q", seen)
}

// Closing the Client ends a membership on it (ErrGone wrapping
// recipes.ErrClientClosed) and closes Watch's channel.
func TestClientCloseEndsMembership(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	c := newClient(t, zkc.Addrs())
	g := membership.NewGroup(c, root)
	m, err := g.Acquire(ctx, "w", nil)
	require.NoError(t, err)
	changes := g.Watch(ctx)
	require.Equal(t, []string{"w"}, next(t, changes))

	require.NoError(t, c.Close())
	select {
	case <-m.Done():
		require.ErrorIs(t, m.Err(), membership.ErrGone)
		require.True(t, errors.Is(m.Err(), recipes.ErrClientClosed), "%v", m.Err())
	case <-time.After(patience):
		t.Fatal("membership outlived its Client")
	}
	select {
	case _, ok := <-changes:
		require.False(t, ok)
	case <-time.After(patience):
		t.Fatal("watch not closed after the Client was closed")
	}
	require.NoError(t, m.Release(ctx), "Leave after the end")
	_, err = g.Acquire(ctx, "w", nil)
	require.ErrorIs(t, err, recipes.ErrClientClosed)
	waitMembers(t, membership.NewGroup(zkc.Session(t), root), nil)
}
