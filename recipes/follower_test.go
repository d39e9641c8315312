package recipes_test

import (
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// TestFollowerCutOffLosesLeaseBeforeNextGrant (issue #11): a follower cut
// off from the leader goes on answering its clients' pings for up to
// syncLimit·tickTime, while the leader expires their sessions after their
// timeout T and grants their locks to the next waiter. A holder attached to
// such a follower must lose its lease before the leader deletes its node,
// so only answers that went through the leader may keep its lease alive.
//
// The holder uses LoseOnSessionEnd, the policy that keeps leases longest
// (LoseOnSuspend loses them on everything LoseOnSessionEnd does, and the
// follower keeps the connection up anyway): only the local deadline can end
// its lease in time.
func TestFollowerCutOffLosesLeaseBeforeNextGrant(t *testing.T) {
	const (
		tick      = 200 * time.Millisecond  // sessions from 2·tick
		timeout   = 1200 * time.Millisecond // T
		syncLimit = 20                      // the cut-off follower serves for 4 s > 2·T
		patience  = 30 * time.Second        // bounds every wait
	)
	zkc := zktest.StartCluster(t, zktest.Config{Servers: 3, PeerProxies: true, TickTime: tick, SyncLimit: syncLimit})
	if zkc.External() {
		t.Skip("needs launched servers with peer proxies")
	}
	addrs := zkc.Addrs()
	leader := zkc.WaitLeader(t)
	followers := zkc.Followers()
	require.Len(t, followers, 2, "followers of leader %d", leader)
	f := followers[0]
	root := zktest.Root(t)
	ctx := ctxT(t, 2*time.Minute)

	// The holder can reach the follower only; the waiter and the observer
	// only the leader.
	holder := zkc.ServerSession(t, f, recipes.WithSessionTimeout(timeout), recipes.WithLossPolicy(recipes.LoseOnSessionEnd))
	waiter := zkc.ServerSession(t, leader)
	obs := zkc.ServerConn(t, leader)
	require.Equal(t, timeout, holder.Timeout(), "negotiated session timeout")
	require.Equal(t, addrs[f], holder.Conn().Server(), "holder's server")
	require.Equal(t, addrs[leader], waiter.Conn().Server(), "waiter's server")

	held, err := lock.NewMutex(holder, root).Acquire(ctx)
	require.NoError(t, err)
	node := held.Path()

	type grant struct {
		l          *lock.Lease
		err        error
		at         time.Time
		holderDone bool // the holder's lease was over when Acquire returned
	}
	granted := make(chan grant, 1)
	wm := lock.NewMutex(waiter, root)
	go func() {
		l, err := wm.Acquire(ctx)
		at := time.Now()
		done := false
		select {
		case <-held.Done():
			done = true
		default:
		}
		granted <- grant{l, err, at, done}
	}()
	queued := time.Now().Add(patience)
	for {
		cs, err := wm.Contenders(ctx)
		require.NoError(t, err)
		if len(cs) == 2 && cs[1].Session == waiter.ID() {
			require.Equal(t, holder.ID(), cs[0].Session, "first contender")
			break
		}
		require.True(t, time.Now().Before(queued), "waiter not queued within %v: %+v", patience, cs)
		time.Sleep(10 * time.Millisecond) // polling server state, not ordering
	}

	// The leader tells the observer the moment it deletes the holder's node.
	_, _, gone, err := obs.GetW(node)
	require.NoError(t, err, "holder's node on the leader before the partition")
	select {
	case <-held.Done():
		t.Fatalf("lease lost before the partition: %v", held.Err())
	default:
	}

	stop := make(chan struct{})
	lost := make(chan time.Time, 1)
	go func() {
		select {
		case <-held.Done():
			lost <- time.Now()
		case <-stop:
		}
	}()
	t.Cleanup(func() { zkc.Heal(t) }) // before the sessions are closed
	isolated := time.Now()
	zkc.Isolate(t, f)
	defer close(stop)

	var (
		lostAt, goneAt time.Time
		g              *grant
	)
	since := func(at time.Time) string {
		if at.IsZero() {
			return "never"
		}
		return at.Sub(isolated).Round(time.Millisecond).String()
	}
	timer := time.NewTimer(patience)
	defer timer.Stop()
	for lostAt.IsZero() || goneAt.IsZero() || g == nil {
		select {
		case lostAt = <-lost:
		case ev := <-gone:
			goneAt, gone = time.Now(), nil // a watch channel is closed after its event
			require.Equal(t, zk.EventNodeDeleted, ev.Type, "watch on %s: %+v", node, ev)
		case r := <-granted:
			g = &r
			require.NoError(t, g.err, "waiter's Acquire")
		case <-timer.C:
			t.Fatalf("within %v of isolating follower %d: holder lost at %v, node gone at %v, waiter granted %v",
				patience, f, since(lostAt), since(goneAt), g != nil)
		}
	}
	t.Logf("after isolating follower %d (leader %d, T %v, syncLimit·tickTime %v): node gone on the leader %v, waiter granted %v, holder's lease lost %v (%v)",
		f, leader, timeout, syncLimit*tick, since(goneAt), since(g.at), since(lostAt), held.Err())

	require.Equal(t, leader, zkc.Leader(), "the leader changed: the test assumes it stays")
	require.False(t, g.at.Before(goneAt), "waiter granted before the holder's node was gone")
	require.True(t, lostAt.Before(goneAt),
		"the holder's lease outlived its node on the leader by %v (node gone %v after the isolation, lease lost %v after)",
		lostAt.Sub(goneAt).Round(time.Millisecond), since(goneAt), since(lostAt))
	require.True(t, g.holderDone,
		"the waiter was granted the lock %v after the isolation while the holder's lease was live (lost %v after)",
		since(g.at), since(lostAt))
	require.ErrorIs(t, held.Err(), lock.ErrLost)
	require.ErrorIs(t, held.Err(), recipes.ErrDeadline, "the holder's lease must end on its local deadline")
	require.Greater(t, g.l.Token(), held.Token())
	require.NoError(t, g.l.Release(ctx))
}
