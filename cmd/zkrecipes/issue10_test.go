package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// Every server refusing the connection fails at once (not after the 30 s
// connect timeout), naming the cause, for every command that connects.
func TestConnectRefusedFailsFast(t *testing.T) {
	addr := zktest.ClosedPort(t)
	for _, args := range [][]string{
		{"lock", "--servers=" + addr, "/a", "--", "true"},
		{"elect", "--servers=" + addr, "/a", "--", "true"},
		{"ls", "--servers=" + addr, "/a"},
		{"revoke", "--servers=" + addr, "/a"},
	} {
		c := runCLI(t, args...).expect(exitError)
		if c.elapsed > 15*time.Second {
			t.Errorf("%v: failed after %v, want at once", args, c.elapsed)
		}
		if se := c.stderr.String(); !strings.Contains(se, "refused") || !strings.Contains(se, addr) {
			t.Errorf("%v: stderr does not name the server and the cause:\n%s", args, se)
		}
	}
	// --retry-refused keeps trying until --connect-timeout, and then
	// names the cause too.
	c := runCLI(t, "ls", "--servers="+addr, "--retry-refused", "--connect-timeout=1s", "/a").expect(exitError)
	if se := c.stderr.String(); c.elapsed < time.Second || !strings.Contains(se, "no ZooKeeper session granted within --connect-timeout (1s)") || !strings.Contains(se, "refused") {
		t.Fatalf("--retry-refused: exit after %v, stderr:\n%s", c.elapsed, se)
	}
}

// A server that accepts connections but never answers: the error after
// --connect-timeout (or lock --timeout) says why, not only "no session".
func TestConnectSilentServerNamesCause(t *testing.T) {
	addr := zktest.SilentServer(t)
	c := runCLI(t, "lock", "--servers="+addr, "--connect-timeout=2s", "/a", "--", "true").expect(exitError)
	se := c.stderr.String()
	if !strings.Contains(se, "no ZooKeeper session granted within --connect-timeout (2s): "+addr+": ") {
		t.Fatalf("stderr does not give the server's cause:\n%s", se)
	}
	c = runCLI(t, "lock", "--servers="+addr, "--timeout=1s", "/a", "--", "true").expect(exitTimeout)
	if se := c.stderr.String(); !strings.Contains(se, "timed out after 1s connecting for lock /a: ") || !strings.Contains(se, addr+": ") {
		t.Fatalf("lock --timeout while connecting: stderr does not give the cause:\n%s", se)
	}
}

// Bad command lines exit 2 before connecting.
func TestUsageErrorsExit2(t *testing.T) {
	ok := "--servers=127.0.0.1:1"
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"lock", "--servers", "garbage", "/a", "--", "true"}, `"garbage" is not host:port`},
		{[]string{"lock", "--servers", "127.0.0.1:99999", "/a", "--", "true"}, "port must be a number from 1 to 65535"},
		{[]string{"ls", "--servers", "zk1:2181,zk2:http", "/a"}, `"zk2:http": the port`},
		{[]string{"lock", ok, "--session-timeout", "1ms", "/a", "--", "true"}, "--session-timeout must be at least 100ms"},
		{[]string{"lock", ok, "--timeout", "5", "/a", "--", "true"}, "missing unit: want a duration such as 5s"},
		{[]string{"ls", ok, "--connect-timeout", "30", "/a"}, "missing unit"},
		{[]string{"revoke", ok, "--break-after", "soon", "--yes", "/a"}, `want a duration such as "5s"`},
		{[]string{"demo", "--workers", "0"}, "--workers >= 2"},
		{[]string{"demo", "--writes", "0"}, "--writes >= 3"},
		{[]string{"--servers", "127.0.0.1:99999", "lock", "/a", "--", "true"}, "port must be"}, // global flag reaches the command
		{[]string{"--bogus", "lock", "/a", "--", "true"}, "flag provided but not defined"},
		{[]string{"--servers", "127.0.0.1:1"}, "missing command"},
	} {
		c := runCLI(t, tc.args...).expect(exitUsage)
		if !strings.Contains(c.stderr.String(), tc.want) {
			t.Errorf("%v: stderr lacks %q:\n%s", tc.args, tc.want, c.stderr)
		}
		if c.elapsed > 15*time.Second {
			t.Errorf("%v: took %v", tc.args, c.elapsed)
		}
	}

	// ZK_SERVERS set but empty does not fall back to 127.0.0.1:2181.
	c := startEnv(t, []string{"ZK_SERVERS="}, false, "ls", "/a")
	c.wait(time.Minute)
	c.expect(exitUsage)
	if !strings.Contains(c.stderr.String(), "ZK_SERVERS is set but empty") {
		t.Fatalf("empty ZK_SERVERS:\n%s", c.stderr)
	}
	// --servers overrides it.
	c = startEnv(t, []string{"ZK_SERVERS="}, false, "ls", "--servers", "127.0.0.1:99999", "/a")
	c.wait(time.Minute)
	c.expect(exitUsage)
	if !strings.Contains(c.stderr.String(), "port must be") {
		t.Fatalf("--servers with empty ZK_SERVERS:\n%s", c.stderr)
	}
	// ZK_SERVERS is checked like --servers.
	c = startEnv(t, []string{"ZK_SERVERS=garbage"}, false, "ls", "/a")
	c.wait(time.Minute)
	c.expect(exitUsage)
}

func TestVersion(t *testing.T) {
	a := runCLI(t, "version").expect(0).stdout.String()
	b := runCLI(t, "--version").expect(0).stdout.String()
	if !strings.HasPrefix(a, "zkrecipes ") || !strings.Contains(a, " go1.") || a != b {
		t.Fatalf("version %q, --version %q", a, b)
	}
	if out := runCLI(t, "help").expect(0).stdout.String(); !strings.Contains(out, "version") {
		t.Fatalf("help does not list version:\n%s", out)
	}
}

// Common flags may come before the command.
func TestGlobalFlagsBeforeCommand(t *testing.T) {
	path := zktest.Root(t) + "/lock"
	c := runCLI(t, servers(t), "-v", "lock", path, "--", "sh", "-c", "echo token $ZKRECIPES_TOKEN").expect(0)
	token(t, field(t, c.stdout.String(), "token"))
	runCLI(t, servers(t), "ls", path).expect(0)
}

// revoke does not overwrite a holder that would not notice, says so and
// exits 3; it refuses an election; a revocable holder shows its identity
// again once it got the request.
func TestRevokeOnlyRevocableHolders(t *testing.T) {
	srv := servers(t)
	path := zktest.Root(t) + "/lock"

	holder := start(t, true, "lock", srv, path, "--", "sh", "-c", "echo started; read x; exit 0")
	holder.waitOutput("started", time.Minute)
	who := identityOf(t, holder)
	c := runCLI(t, "revoke", srv, path).expect(exitNotRevocable)
	if se := c.stderr.String(); !strings.Contains(se, who+" cannot be revoked") || !strings.Contains(se, "--revocable") {
		t.Fatalf("revoke of a plain holder:\nstdout:\n%s\nstderr:\n%s", c.stdout, se)
	}
	if strings.Contains(c.stdout.String(), "asked") {
		t.Fatalf("revoke claims it asked a plain holder:\n%s", c.stdout)
	}
	l := waitContenders(t, srv, path, 1)
	if l.Contenders[0].Data != who {
		t.Fatalf("revoke changed the plain holder's data to %q", l.Contenders[0].Data)
	}
	holder.stdin.Close()
	holder.expectExit(t, 0)

	// A revocable holder whose command takes its time to exit.
	holder = start(t, true, "lock", srv, "--revocable", "--grace=2m", path, "--", "sh", "-c",
		`trap 'echo got TERM; read x; exit 0' TERM; echo started; while :; do sleep 0.2; done`)
	holder.waitOutput("started", time.Minute)
	who = identityOf(t, holder)
	if d := waitContenders(t, srv, path, 1).Contenders[0].Data; d != who+";revocable" {
		t.Fatalf("revocable holder's data %q", d)
	}
	c = runCLI(t, "revoke", srv, path).expect(0)
	if !strings.Contains(c.stdout.String(), "asked "+who+";revocable to release") {
		t.Fatalf("revoke of a revocable holder:\n%s", c.stdout)
	}
	holder.waitOutput("got TERM", time.Minute)
	// Its identity is back, marked as revoked; a second revoke says so.
	if d := waitContenders(t, srv, path, 1).Contenders[0].Data; d != who+";revocable;revoked" {
		t.Fatalf("revoked holder's data %q", d)
	}
	c = runCLI(t, "revoke", srv, path).expect(0)
	if out := c.stdout.String(); !strings.Contains(out, "already asked "+who+" to release") || strings.Contains(out, lock.RevokeMessage) {
		t.Fatalf("second revoke:\n%s", out)
	}
	holder.stdin.Close()
	holder.expectExit(t, exitRevoked)

	// An election is not a lock.
	epath := zktest.Root(t) + "/election"
	leader := start(t, true, "elect", srv, epath, "--", "sh", "-c", "echo started; read x; exit 0")
	leader.waitOutput("started", time.Minute)
	c = runCLI(t, "revoke", srv, epath).expect(exitUsage)
	if !strings.Contains(c.stderr.String(), "election") || strings.Contains(c.stdout.String(), "not held") {
		t.Fatalf("revoke of an election:\nstdout:\n%s\nstderr:\n%s", c.stdout, c.stderr)
	}
	leader.stdin.Close()
	leader.expectExit(t, 0)
}

// lock and elect say what they wait for (-v, or a terminal), and how long
// they waited.
func TestWaitingProgress(t *testing.T) {
	srv := servers(t)
	root := zktest.Root(t)
	for _, tc := range []struct {
		cmd, path, waiting, granted string
	}{
		{"lock", root + "/lock", "waiting for lock " + root + "/lock, held by ", "got lock " + root + "/lock after "},
		{"elect", root + "/election", "waiting for leadership of " + root + "/election, led by ", "won leadership of " + root + "/election after "},
	} {
		holder := start(t, true, tc.cmd, srv, tc.path, "--", "sh", "-c", "echo token $ZKRECIPES_TOKEN; read x; exit 0")
		tok := field(t, holder.waitOutput("token", time.Minute), "token")
		waiter := start(t, false, tc.cmd, srv, "-v", tc.path, "--", "true")
		want := tc.waiting + identityOf(t, holder) + " (token " + tok + "), 1 ahead"
		waiter.waitStderr(want, time.Minute)
		holder.stdin.Close()
		holder.expectExit(t, 0)
		waiter.expectExit(t, 0)
		if !strings.Contains(waiter.stderr.String(), tc.granted) {
			t.Fatalf("%s: no wait time once granted:\n%s", tc.cmd, waiter.stderr)
		}
	}
	// Quiet without -v when not on a terminal; nothing when not waiting.
	c := runCLI(t, "lock", srv, "-v", root+"/free", "--", "true").expect(0)
	if strings.Contains(c.stderr.String(), "waiting for") || strings.Contains(c.stderr.String(), "got lock") {
		t.Fatalf("progress for a free lock:\n%s", c.stderr)
	}
}

// elect --try fails at once when someone leads; elect --timeout names the
// leader, as lock --timeout names the holder.
func TestElectTryAndTimeoutNameLeader(t *testing.T) {
	srv := servers(t)
	path := zktest.Root(t) + "/election"
	runCLI(t, "elect", srv, "--try", path, "--", "true").expect(0) // nobody leads

	leader := start(t, true, "elect", srv, path, "--", "sh", "-c", "echo started; read x; exit 0")
	leader.waitOutput("started", time.Minute)
	who := identityOf(t, leader)
	c := runCLI(t, "elect", srv, "--try", path, "--", "echo", "ran").expect(exitHeld)
	if strings.Contains(c.stdout.String(), "ran") || !strings.Contains(c.stderr.String(), who) {
		t.Fatalf("elect --try while led: stdout %q, stderr %q", c.stdout, c.stderr)
	}
	c = runCLI(t, "elect", srv, "--timeout=1s", path, "--", "echo", "ran").expect(exitTimeout)
	if strings.Contains(c.stdout.String(), "ran") || !strings.Contains(c.stderr.String(), "led by \""+who+"\"") {
		t.Fatalf("elect --timeout while led: stdout %q, stderr %q", c.stdout, c.stderr)
	}
	waitContenders(t, srv, path, 1) // the failed candidates left
	leader.stdin.Close()
	leader.expectExit(t, 0)
}

// A command that ignores SIGTERM: the second signal says so, the third
// kills it, and the lock is released.
func TestChildIgnoringSignals(t *testing.T) {
	srv := servers(t)
	path := zktest.Root(t) + "/lock"
	holder := start(t, false, "lock", srv, path, "--", "sh", "-c",
		`trap 'echo got TERM' TERM; echo started; while :; do sleep 0.2; done`)
	holder.waitOutput("started", time.Minute)
	if err := holder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	holder.waitOutput("got TERM", time.Minute)
	if err := holder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	holder.waitStderr("one more signal kills it", time.Minute)
	if err := holder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	holder.expectExit(t, 128+int(syscall.SIGKILL))
	if !strings.Contains(holder.stderr.String(), "SIGKILL") {
		t.Fatalf("stderr:\n%s", holder.stderr)
	}
	runCLI(t, "lock", srv, "--try", path, "--", "true").expect(0)

	// --kill-after: SIGKILL that long after the first signal.
	holder = start(t, false, "lock", srv, "--kill-after=1s", path, "--", "sh", "-c",
		`trap '' TERM; echo started; while :; do sleep 0.2; done`)
	holder.waitOutput("started", time.Minute)
	if err := holder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	holder.expectExit(t, 128+int(syscall.SIGKILL))
	if !strings.Contains(holder.stderr.String(), "--kill-after 1s") {
		t.Fatalf("stderr:\n%s", holder.stderr)
	}
	runCLI(t, "lock", srv, "--try", path, "--", "true").expect(0)
}

// ls --strict fails on a missing path; holders of this host whose process
// is gone are marked.
func TestLsStrictAndDeadHolders(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	srv := servers(t)
	root := zktest.Root(t)

	if out := runCLI(t, "ls", srv, root+"/missing").expect(0).stdout.String(); !strings.Contains(out, "no contenders") {
		t.Fatalf("ls of a missing path:\n%s", out)
	}
	c := runCLI(t, "ls", srv, "--strict", root+"/missing").expect(exitNoSuchPath)
	if !strings.Contains(c.stderr.String(), "does not exist") {
		t.Fatalf("ls --strict of a missing path:\n%s", c.stderr)
	}
	var l listing
	out := runCLI(t, "ls", srv, "--json", root+"/missing").expect(0).stdout.String()
	if err := json.Unmarshal([]byte(out), &l); err != nil || l.Exists {
		t.Fatalf("ls --json of a missing path: %v\n%s", err, out)
	}

	// A holder whose process (on this host) is gone, and a live one.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	deadID := host + ":" + strconv.Itoa(dead.Process.Pid)
	sess := zkc.Session(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lease, err := lock.NewMutex(sess, root+"/lock", lock.WithData([]byte(deadID))).Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(ctx)
	liveID := host + ":" + strconv.Itoa(os.Getpid())
	waiter := make(chan error, 1)
	wctx, wcancel := context.WithCancel(ctx)
	go func() {
		l, err := lock.NewMutex(sess, root+"/lock", lock.WithData([]byte(liveID))).Acquire(wctx)
		if err == nil {
			l.Release(ctx)
		}
		waiter <- err
	}()
	defer func() { wcancel(); <-waiter }()

	l = waitContenders(t, srv, root+"/lock", 2)
	if !l.Exists || !l.Contenders[0].NotRunning || l.Contenders[1].NotRunning {
		t.Fatalf("ls --json: %+v", l)
	}
	text := runCLI(t, "ls", srv, "--strict", root+"/lock").expect(0).stdout.String()
	if !strings.Contains(text, deadID+" (NOT RUNNING)") || strings.Contains(text, liveID+" (NOT RUNNING)") {
		t.Fatalf("ls:\n%s", text)
	}
}
