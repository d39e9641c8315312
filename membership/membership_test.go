package membership_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkrecipes/zkrecipes/membership"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// TestMain skips the package without ZooKeeper (its runnable Example needs
// a server), runs everything, stops the servers, then checks for leaks.
func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Wrap(m)) }

const patience = 15 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func ids(ms []membership.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// next receives the next member list, or fails.
func next(t *testing.T, ch <-chan []membership.Member) []string {
	t.Helper()
	select {
	case ms, ok := <-ch:
		require.True(t, ok, "watch closed")
		return ids(ms)
	case <-time.After(patience):
		t.Fatal("no membership change seen")
		return nil
	}
}

func TestJoinLeaveExpiryWatch(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	observer := membership.NewGroup(zkc.Session(t), root)
	changes := observer.Watch(ctx)
	require.Empty(t, next(t, changes))

	s1, s2 := zkc.Session(t), zkc.Session(t)
	m1, err := membership.NewGroup(s1, root).Acquire(ctx, "worker-1", []byte("10.0.0.1:80"))
	require.NoError(t, err)
	require.Equal(t, []string{"worker-1"}, next(t, changes))
	m2, err := membership.NewGroup(s2, root).Acquire(ctx, "worker-2", nil)
	require.NoError(t, err)
	require.Equal(t, []string{"worker-1", "worker-2"}, next(t, changes))

	ms, err := observer.Members(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"worker-1", "worker-2"}, ids(ms))
	require.Equal(t, "10.0.0.1:80", string(ms[0].Data))
	require.Equal(t, s1.ID(), ms[0].Session)

	require.NoError(t, m1.Release(ctx))
	require.ErrorIs(t, m1.Err(), membership.ErrReleased)
	require.Equal(t, []string{"worker-2"}, next(t, changes))

	zkc.Expire(t, s2)
	require.Empty(t, next(t, changes), "an expired member leaves the group")
	select {
	case <-m2.Done():
		require.ErrorIs(t, m2.Err(), membership.ErrGone)
	case <-time.After(patience):
		t.Fatal("membership not over after its session expired")
	}
}

func waitMembers(t *testing.T, g *membership.Group, want []string) []membership.Member {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		ms, err := g.Members(context.Background())
		require.NoError(t, err)
		if len(ms) == len(want) && (len(want) == 0 || equal(ids(ms), want)) {
			return ms
		}
		require.True(t, time.Now().Before(deadline), "members %v, want %v", ids(ms), want)
		time.Sleep(20 * time.Millisecond) // polling server state
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBadInput(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	sess := zkc.Session(t)
	ctx := testCtx(t)
	_, err := membership.NewGroup(nil, "/g").Acquire(ctx, "a", nil)
	require.ErrorIs(t, err, recipes.ErrNilSession)
	_, err = membership.NewGroup(sess, "g").Members(ctx)
	require.ErrorIs(t, err, recipes.ErrInvalidPath)
	for _, id := range []string{"", "a/b", ".", ".."} {
		_, err = membership.NewGroup(sess, zktest.Root(t)).Acquire(ctx, id, nil)
		require.ErrorContains(t, err, "invalid member id")
	}
}

func TestSameIDWaitsForPreviousIncarnation(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	old := zkc.Session(t)
	_, err := membership.NewGroup(old, root).Acquire(ctx, "w", nil)
	require.NoError(t, err)
	joined := make(chan error, 1)
	s2 := zkc.Session(t)
	go func() {
		_, err := membership.NewGroup(s2, root).Acquire(ctx, "w", nil)
		joined <- err
	}()
	select {
	case err := <-joined:
		t.Fatalf("joined while the id was held: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	zkc.Expire(t, old)
	select {
	case err := <-joined:
		require.NoError(t, err)
	case <-time.After(patience):
		t.Fatal("did not join after the previous holder of the id expired")
	}
}

// WithACL sets the member nodes' ACL; a Membership's Context ends with
// Release, its cause ErrReleased, and its Token is its node's czxid.
func TestMembershipACLContextToken(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	ctx := testCtx(t)
	acl := append(zk.DigestACL(zk.PermAll, "svc", "secret"), zk.WorldACL(zk.PermRead)...)
	sess := zkc.Session(t, recipes.WithDigestAuth("svc", "secret"))
	m, err := membership.NewGroup(sess, root+"/group", membership.WithACL(acl)).Acquire(ctx, "w1", nil)
	require.NoError(t, err)
	got, st, err := zkc.Conn(t).GetACL(root + "/group/w1")
	require.NoError(t, err)
	zktest.SameACL(t, acl, got)
	require.Equal(t, st.Czxid, int64(m.Token()))
	require.NoError(t, m.Context().Err())
	require.NoError(t, m.Release(ctx))
	require.ErrorIs(t, context.Cause(m.Context()), membership.ErrReleased)
	_, err = membership.NewGroup(sess, root+"/g2", membership.WithACL(nil)).Members(ctx)
	require.ErrorContains(t, err, "empty ACL")
}
