package zktest_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/goleak"

	"github.com/zkrecipes/zkrecipes/zktest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	zktest.Cleanup()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak after all tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// noLeaks checks, after the test's other cleanups ran, that the test left
// no goroutines behind.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var openACL = zk.WorldACL(zk.PermAll)

func mkRoot(t *testing.T, conn *zk.Conn) string {
	t.Helper()
	root := zktest.Root(t)
	_, err := conn.Create(zktest.RootPrefix, nil, 0, openACL)
	if err != nil && !errors.Is(err, zk.ErrNodeExists) {
		t.Fatal(err)
	}
	_, err = conn.Create(root, nil, 0, openACL)
	noErr(t, err)
	return root
}

func TestStandalone(t *testing.T) {
	noLeaks(t)
	c := zktest.Start(t)
	out, err := zktest.FourLetter(c.Addrs()[0], "ruok")
	noErr(t, err)
	if out != "imok" {
		t.Fatalf("ruok: %q", out)
	}
	if !c.External() {
		if n := len(c.Addrs()); n != 1 {
			t.Fatalf("Addrs: %d, want 1", n)
		}
		if l := c.Leader(); l != 0 {
			t.Fatalf("Leader: %d, want 0", l)
		}
	}

	conn := c.Conn(t)
	root := mkRoot(t, conn)
	_, err = conn.Create(root+"/x", []byte("hello"), 0, openACL)
	noErr(t, err)
	data, _, err := conn.Get(root + "/x")
	noErr(t, err)
	if string(data) != "hello" {
		t.Fatalf("data %q", data)
	}
}

func TestEnsembleLeaderFailover(t *testing.T) {
	noLeaks(t)
	c := zktest.StartCluster(t, zktest.Config{Servers: 3})
	if n := len(c.Addrs()); n != 3 {
		t.Fatalf("Addrs: %d, want 3", n)
	}

	leaders := 0
	for _, addr := range c.Addrs() {
		out, err := zktest.FourLetter(addr, "srvr")
		noErr(t, err)
		if strings.Contains(out, "Mode: leader") {
			leaders++
		} else if !strings.Contains(out, "Mode: follower") {
			t.Fatalf("srvr %s: %s", addr, out)
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders", leaders)
	}

	conn := c.Conn(t)
	root := mkRoot(t, conn)

	// A paused follower does not stop the quorum.
	follower := (c.Leader() + 1) % 3
	c.Pause(t, follower)
	c.WaitQuorum(t)
	c.Resume(t, follower)

	old := c.KillLeader(t)
	c.WaitQuorum(t)
	now := c.Leader()
	if now < 0 || now == old {
		t.Fatalf("leader after killing %d: %d", old, now)
	}

	c.Restart(t, old)
	c.WaitQuorum(t)
	_, err := conn.Create(root+"/after", nil, 0, openACL)
	noErr(t, err)
}

func TestProxyModes(t *testing.T) {
	noLeaks(t)
	c := zktest.Shared(t, zktest.Config{})
	p := c.Proxy(t)
	if n := len(p.Addrs()); n != len(c.Addrs()) {
		t.Fatalf("proxy Addrs: %d, want %d", n, len(c.Addrs()))
	}

	conn := p.Conn(t, zktest.ConnSessionTimeout(time.Second))
	_, _, err := conn.Exists("/")
	noErr(t, err)

	p.Set(zktest.Blackhole)
	eventually(t, 10*time.Second, "the conn to notice the blackhole", func() bool {
		return conn.State() != zk.StateHasSession
	})

	p.Set(zktest.Pass)
	fresh := p.Conn(t)
	_, _, err = fresh.Exists("/")
	noErr(t, err)
	eventually(t, 10*time.Second, "the old conn to get a session again", func() bool {
		return conn.State() == zk.StateHasSession
	})

	// Hang: nothing flows, the client times out; afterwards it reconnects.
	p.Set(zktest.Hang)
	eventually(t, 10*time.Second, "the conn to notice the hang", func() bool {
		return conn.State() != zk.StateHasSession
	})
	p.Set(zktest.Pass)
	eventually(t, 10*time.Second, "a session after Hang→Pass", func() bool {
		return conn.State() == zk.StateHasSession
	})

	p.Set(zktest.Reset)
	eventually(t, 10*time.Second, "the conn to notice the reset", func() bool {
		return conn.State() != zk.StateHasSession
	})
	p.Set(zktest.Pass)
	eventually(t, 10*time.Second, "a session after Reset→Pass", func() bool {
		return conn.State() == zk.StateHasSession
	})
}

func TestProxyDropNextReply(t *testing.T) {
	noLeaks(t)
	c := zktest.Shared(t, zktest.Config{})
	obs := c.Conn(t)
	root := mkRoot(t, obs)

	p := c.Proxy(t)
	conn := p.Conn(t)
	dropped := p.DropNextReply(zktest.CreateOps...)
	_, err := conn.Create(root+"/lost-reply", nil, 0, openACL)
	if err == nil {
		t.Fatal("the reply was dropped, the create must not report success")
	}
	select {
	case <-dropped:
	case <-time.After(10 * time.Second):
		t.Fatal("DropNextReply did not fire")
	}
	ok, _, err := obs.Exists(root + "/lost-reply")
	noErr(t, err)
	if !ok {
		t.Fatal("the create must have taken effect on the server")
	}
}

func TestExpireConn(t *testing.T) {
	noLeaks(t)
	c := zktest.Shared(t, zktest.Config{})
	obs := c.Conn(t)
	root := mkRoot(t, obs)

	conn := c.Conn(t)
	old := conn.SessionID()
	_, err := conn.Create(root+"/eph", nil, zk.FlagEphemeral, openACL)
	noErr(t, err)

	c.ExpireConn(t, conn)

	ok, _, err := obs.Exists(root + "/eph")
	noErr(t, err)
	if ok {
		t.Fatal("the ephemeral node must be gone once Expire returns")
	}
	// go-zookeeper reconnects, learns of the expiry and opens a new session.
	eventually(t, 10*time.Second, "a new session on the expired conn", func() bool {
		return conn.State() == zk.StateHasSession && conn.SessionID() != old
	})
}

func TestExpireSession(t *testing.T) {
	noLeaks(t)
	c := zktest.Shared(t, zktest.Config{})
	obs := c.Conn(t)
	root := mkRoot(t, obs)

	sess := c.Session(t)
	_, err := sess.Conn().Create(root+"/eph", nil, zk.FlagEphemeral, openACL)
	noErr(t, err)

	c.Expire(t, sess)
	ok, _, err := obs.Exists(root + "/eph")
	noErr(t, err)
	if ok {
		t.Fatal("the ephemeral node must be gone once Expire returns")
	}
	select {
	case <-sess.Done():
		t.Logf("session ended: %v", sess.Err())
	case <-time.After(15 * time.Second):
		t.Fatal("recipes.Session did not notice the expiry")
	}
}

func TestSharedIsShared(t *testing.T) {
	a := zktest.Shared(t, zktest.Config{})
	b := zktest.Shared(t, zktest.Config{Servers: 1, TickTime: 200 * time.Millisecond})
	if a != b {
		t.Fatal("Shared returned two clusters for equivalent configs")
	}
	if c := zktest.Shared(t, zktest.Config{SyncLimit: 5, InitLimit: 10}); c != a {
		t.Fatal("Shared returned another cluster for the default SyncLimit and InitLimit")
	}
	if a.External() {
		return // one external ensemble serves every config
	}
	if c := zktest.Shared(t, zktest.Config{SyncLimit: 7}); c == a {
		t.Fatal("Shared returned the same cluster for another SyncLimit")
	}
}

func TestRoot(t *testing.T) {
	t.Run("sub test/with spaces", func(t *testing.T) {
		r1, r2 := zktest.Root(t), zktest.Root(t)
		if r1 == r2 {
			t.Fatal("Root is not unique")
		}
		if !strings.HasPrefix(r1, "/zktest/TestRoot_sub_test_with_spaces-") || strings.Count(r1, "/") != 2 {
			t.Fatalf("Root: %q", r1)
		}
	})
}

// serverConn connects to server addr alone.
func serverConn(t *testing.T, addr string) *zk.Conn {
	t.Helper()
	conn, _, err := zk.Connect([]string{addr}, 2*time.Second,
		zk.WithLogger(zkDiscard{}), zk.WithLogInfo(false), zk.WithEventCallback(func(zk.Event) {}))
	noErr(t, err)
	t.Cleanup(conn.Close)
	eventually(t, 20*time.Second, "a session on "+addr, func() bool { return conn.State() == zk.StateHasSession })
	return conn
}

type zkDiscard struct{}

func (zkDiscard) Printf(string, ...any) {}

func mode(addr string) string {
	out, err := zktest.FourLetter(addr, "srvr")
	if err != nil {
		return "error: " + err.Error()
	}
	for _, line := range strings.Split(out, "\n") {
		if m, ok := strings.CutPrefix(line, "Mode: "); ok {
			return strings.TrimSpace(m)
		}
	}
	return "not serving"
}

func TestIsolateLeader(t *testing.T) {
	noLeaks(t)
	c := zktest.StartCluster(t, zktest.Config{Servers: 3, PeerProxies: true})
	if c.External() {
		t.Skip("needs launched servers")
	}
	addrs := c.Addrs()
	conn := c.Conn(t)
	root := mkRoot(t, conn)

	old := c.WaitLeader(t)
	viaOld := serverConn(t, addrs[old])
	_, err := viaOld.Create(root+"/before", nil, 0, openACL)
	noErr(t, err)

	start := time.Now()
	if got := c.IsolateLeader(t); got != old {
		t.Fatalf("IsolateLeader isolated %d, the leader was %d", got, old)
	}
	if iso := c.Isolated(); len(iso) != 1 || iso[0] != old {
		t.Fatalf("Isolated: %v", iso)
	}
	newLeader := -1
	// About 1–4 s on an idle machine; up to 8 s seen while the verify suite
	// ran alongside on two cores.
	eventually(t, 20*time.Second, "a new leader among the other two", func() bool {
		newLeader = c.Leader() // skips the isolated server
		return newLeader >= 0 && newLeader != old
	})
	t.Logf("isolated leader %d; server %d leads after %v", old, newLeader, time.Since(start).Round(time.Millisecond))
	c.WaitQuorum(t)
	eventually(t, 10*time.Second, "the isolated server to stop leading", func() bool {
		m := mode(addrs[old])
		return m != "leader" && m != "follower"
	})

	// The majority serves writes; the isolated server does not.
	_, err = conn.Create(root+"/majority", nil, 0, openACL)
	noErr(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := viaOld.Create(root+"/isolated", nil, 0, openACL)
		done <- err
	}()
	pending := true
	select {
	case err := <-done:
		pending = false
		if err == nil {
			t.Fatal("a write through the isolated server succeeded")
		}
		t.Logf("write through the isolated server: %v", err)
	case <-time.After(5 * time.Second):
		t.Log("write through the isolated server: no reply within 5 s")
	}
	if m := mode(addrs[old]); m == "leader" || m == "follower" {
		t.Fatalf("isolated server %d reports mode %s", old, m)
	}

	c.Heal(t)
	eventually(t, 30*time.Second, "the healed server to follow", func() bool {
		return mode(addrs[old]) == "follower"
	})
	c.WaitQuorum(t)
	if l := c.Leader(); l != newLeader {
		t.Fatalf("leader after healing: %d, want %d", l, newLeader)
	}
	// It has the write made while it was isolated.
	healed := serverConn(t, addrs[old])
	_, err = healed.Sync(root)
	noErr(t, err)
	ok, _, err := healed.Exists(root + "/majority")
	noErr(t, err)
	if !ok {
		t.Fatalf("server %d lacks %s/majority after healing", old, root)
	}
	if pending {
		// The write may still go through now, after the heal; it must not
		// have been applied by the isolated server alone.
		if err := <-done; err == nil {
			t.Log("the pending write through the isolated server succeeded after the heal")
		}
	}
}

// confValue returns the value of key in the conf command's reply from addr.
func confValue(t *testing.T, addr, key string) string {
	t.Helper()
	out, err := zktest.FourLetter(addr, "conf")
	noErr(t, err)
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			return v
		}
	}
	t.Fatalf("conf from %s has no %s:\n%s", addr, key, out)
	return ""
}

// TestIsolateFollower: a partitioned follower leaves the quorum alone, goes
// on calling itself a follower for about SyncLimit·TickTime, and rejoins
// after Heal.
func TestIsolateFollower(t *testing.T) {
	noLeaks(t)
	const tick, syncLimit, initLimit = 200 * time.Millisecond, 15, 12
	c := zktest.StartCluster(t, zktest.Config{Servers: 3, PeerProxies: true, SyncLimit: syncLimit, InitLimit: initLimit})
	if c.External() {
		t.Skip("needs launched servers")
	}
	addrs := c.Addrs()
	for _, a := range addrs {
		if got := confValue(t, a, "syncLimit"); got != fmt.Sprint(syncLimit) {
			t.Fatalf("%s: syncLimit=%s, want %d", a, got, syncLimit)
		}
		if got := confValue(t, a, "initLimit"); got != fmt.Sprint(initLimit) {
			t.Fatalf("%s: initLimit=%s, want %d", a, got, initLimit)
		}
	}
	leader := c.WaitLeader(t)
	followers := c.Followers()
	if len(followers) != 2 || slices.Contains(followers, leader) {
		t.Fatalf("Followers: %v with leader %d", followers, leader)
	}
	f := followers[0]
	obs := c.ServerConn(t, leader)
	if obs.Server() != addrs[leader] {
		t.Fatalf("ServerConn(%d) is connected to %s, want %s", leader, obs.Server(), addrs[leader])
	}
	start := time.Now()
	c.Isolate(t, f)
	if got := c.Followers(); len(got) != 1 || got[0] == f {
		t.Fatalf("Followers after isolating %d: %v", f, got)
	}
	eventually(t, 20*time.Second, "the isolated follower to stop serving", func() bool {
		m := mode(addrs[f])
		return m != "follower" && m != "leader"
	})
	// It waited for its leader for syncLimit ticks (polling adds a little).
	gaveUp := time.Since(start)
	t.Logf("isolated follower %d stopped serving after %v (syncLimit·tickTime %v)", f, gaveUp.Round(time.Millisecond), syncLimit*tick)
	if gaveUp < syncLimit*tick-tick {
		t.Fatalf("isolated follower stopped serving after %v, before syncLimit·tickTime %v", gaveUp, syncLimit*tick)
	}
	c.WaitQuorum(t)
	if l := c.Leader(); l != leader {
		t.Fatalf("leader changed from %d to %d when a follower was isolated", leader, l)
	}
	conn := c.Conn(t)
	mkRoot(t, conn)
	c.Heal(t)
	eventually(t, 30*time.Second, "the healed follower to follow", func() bool { return mode(addrs[f]) == "follower" })
	c.WaitQuorum(t)
}
