package main

import (
	"strings"
	"testing"
	"time"

	"github.com/zkrecipes/zkrecipes/zktest"
)

// elect campaigns again after losing its term: cut off from the ensemble
// past its session's local deadline, it stops CMD, and once the network
// heals it opens a new session, wins again and runs CMD anew with a larger
// token. With --once it exits 5 instead.
func TestElectCampaignsAgainAfterLoss(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	p := zkc.Proxy(t)
	srv := "--servers=" + strings.Join(p.Addrs(), ",")
	path := zktest.Root(t) + "/election"

	c := start(t, true, "elect", srv, "--session-timeout=1s", path, "--", "sh", "-c", `echo token $ZKRECIPES_TOKEN; exec sleep 300`)
	first := token(t, field(t, c.waitOutput("token", time.Minute), "token"))
	p.Set(zktest.Blackhole)
	c.waitStderr("campaigning again", 30*time.Second)
	p.Set(zktest.Pass)
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(c.stdout.String(), "token ") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no second term:\nstdout:\n%s\nstderr:\n%s", c.stdout, c.stderr)
		}
		time.Sleep(20 * time.Millisecond) // polling output, not ordering
	}
	lines := strings.Split(strings.TrimSpace(c.stdout.String()), "\n")
	second := token(t, field(t, lines[len(lines)-1], "token"))
	if second <= first {
		t.Fatalf("second term's token %d not larger than the first's %d", second, first)
	}

	once := start(t, true, "elect", srv, "--once", "--session-timeout=1s", zktest.Root(t)+"/once", "--", "sh", "-c", `echo token $ZKRECIPES_TOKEN; exec sleep 300`)
	once.waitOutput("token", time.Minute)
	p.Set(zktest.Blackhole)
	once.expectExit(t, exitLost)
	p.Set(zktest.Pass)
}

// elect --listen keeps listening after its own session is lost.
func TestElectListenAcrossSessionLoss(t *testing.T) {
	srv := servers(t)
	zkc := zktest.Shared(t, zktest.Config{})
	p := zkc.Proxy(t)
	path := zktest.Root(t) + "/election"

	listener := start(t, false, "elect", "--servers="+strings.Join(p.Addrs(), ","), "--session-timeout=1s", "--listen", path)
	listener.waitOutput("no leader", time.Minute)
	p.Set(zktest.Blackhole) // past the listener's local deadline: its session is lost
	listener.waitStderr("lost", 30*time.Second)
	p.Set(zktest.Pass)
	leader := start(t, true, "elect", srv, path, "--", "sh", "-c", `echo token $ZKRECIPES_TOKEN; read x || true`)
	leader.waitOutput("token", time.Minute)
	listener.waitOutput("leader value="+identityOf(t, leader), 30*time.Second)
	leader.stdin.Close()
	leader.expectExit(t, 0)
}
