package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// These need no ZooKeeper: usage errors come before connecting.
func TestUsage(t *testing.T) {
	nowhere := "--servers=127.0.0.1:1"
	runCLI(t).expect(exitUsage)
	runCLI(t, "frobnicate").expect(exitUsage)
	if out := runCLI(t, "help").expect(0).stdout.String(); !strings.Contains(out, "Exit codes") || !strings.Contains(out, "ZK_SERVERS") {
		t.Fatalf("help lacks exit codes or env:\n%s", out)
	}
	for _, c := range []string{"lock", "elect", "ls", "revoke", "demo"} {
		if out := runCLI(t, c, "-h").expect(0).stdout.String(); !strings.Contains(out, "Usage:") || !strings.Contains(out, "Flags:") {
			t.Fatalf("%s -h:\n%s", c, out)
		}
		runCLI(t, "help", c).expect(0)
	}
	runCLI(t, "lock", nowhere, "/a").expect(exitUsage)                            // no CMD
	runCLI(t, "lock", nowhere, "a", "--", "true").expect(exitUsage)               // relative path
	runCLI(t, "lock", nowhere, "--bogus", "/a", "--", "true").expect(exitUsage)   // unknown flag
	runCLI(t, "lock", "--servers=", "/a", "--", "true").expect(exitUsage)         // no servers
	runCLI(t, "lock", nowhere, "--loss-policy=x", "/a", "true").expect(exitUsage) // bad policy
	runCLI(t, "lock", nowhere, "/a", "--", "/no/such/cmd").expect(exitNotFound)
	runCLI(t, "elect", nowhere, "--listen", "/a", "--", "true").expect(exitUsage)
	runCLI(t, "ls", nowhere, "/a", "/b").expect(exitUsage)

	c := runCLI(t, "revoke", nowhere, "--break-after", "5s", "/a").expect(exitUsage)
	if !strings.Contains(c.stderr.String(), "--yes") {
		t.Fatalf("revoke --break-after without --yes should ask for --yes:\n%s", c.stderr)
	}
}

func TestLockRunsCommandWithToken(t *testing.T) {
	srv := servers(t)
	root := zktest.Root(t)
	path := root + "/lock"

	c := runCLI(t, "lock", srv, path, "--", "sh", "-c", `echo "token $ZKRECIPES_TOKEN path $ZKRECIPES_LOCK_PATH"`).expect(0)
	tok1 := token(t, field(t, c.stdout.String(), "token"))
	if got := field(t, c.stdout.String(), "path"); got != path {
		t.Fatalf("ZKRECIPES_LOCK_PATH = %q, want %q", got, path)
	}
	// Flags after PATH, no "--": a later holder gets a larger token.
	c = runCLI(t, "lock", path, srv, "sh", "-c", `echo token $ZKRECIPES_TOKEN`).expect(0)
	if tok2 := token(t, field(t, c.stdout.String(), "token")); tok2 <= tok1 {
		t.Fatalf("second token %d not larger than first %d", tok2, tok1)
	}

	// The child's exit status, and 128+signal.
	runCLI(t, "lock", srv, path, "--", "sh", "-c", "exit 7").expect(7)
	runCLI(t, "lock", srv, path, "--", "sh", "-c", "kill -TERM $$").expect(128 + int(syscall.SIGTERM))

	// The lock was released every time; a clean run says nothing on stderr.
	c = runCLI(t, "lock", srv, "--try", path, "--", "true").expect(0)
	if c.stderr.String() != "" {
		t.Fatalf("stderr of a clean run: %s", c.stderr)
	}
}

func TestLockHeldTryTimeoutAndLs(t *testing.T) {
	srv := servers(t)
	path := zktest.Root(t) + "/lock"

	holder := start(t, true, "lock", srv, path, "--", "sh", "-c", `echo token $ZKRECIPES_TOKEN; read x || true`)
	tokA := token(t, field(t, holder.waitOutput("token", time.Minute), "token"))
	who := identityOf(t, holder)

	c := runCLI(t, "lock", srv, "--try", path, "--", "echo", "ran").expect(exitHeld)
	if strings.Contains(c.stdout.String(), "ran") || !strings.Contains(c.stderr.String(), who) {
		t.Fatalf("--try while held: stdout %q, stderr %q (want the holder %s named)", c.stdout, c.stderr, who)
	}

	c = runCLI(t, "lock", srv, "--timeout", "1s", path, "--", "echo", "ran").expect(exitTimeout)
	if c.elapsed < time.Second || strings.Contains(c.stdout.String(), "ran") {
		t.Fatalf("--timeout 1s: exited after %v, stdout %q", c.elapsed, c.stdout)
	}

	// A waiter queues behind the holder.
	waiter := start(t, false, "lock", srv, path, "--", "sh", "-c", `echo token $ZKRECIPES_TOKEN`)
	var l listing
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := runCLI(t, "ls", srv, "--json", path).expect(0).stdout.String()
		l = listing{}
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("ls --json: %v\n%s", err, out)
		}
		if len(l.Contenders) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ls never showed the holder and one waiter:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h, w := l.Contenders[0], l.Contenders[1]
	if l.Path != path || h.Recipe != "lock" || h.Role != "holder" || h.Data != who || h.Token != tokA || h.Kind != lock.Kind ||
		!strings.HasPrefix(h.Session, "0x") || w.Role != "waiter" || w.Data != identityOf(t, waiter) || w.Seq <= h.Seq {
		t.Fatalf("ls --json: %+v", l)
	}
	text := runCLI(t, "ls", srv, path).expect(0).stdout.String()
	if !strings.Contains(text, "holder") || !strings.Contains(text, who) || !strings.Contains(text, "waiter") {
		t.Fatalf("ls:\n%s", text)
	}

	holder.stdin.Close() // the holder's child exits 0, the lock goes to the waiter
	holder.expectExit(t, 0)
	waiter.expectExit(t, 0)
	if tokB := token(t, field(t, waiter.stdout.String(), "token")); tokB <= tokA {
		t.Fatalf("waiter's token %d not larger than holder's %d", tokB, tokA)
	}
	if out := runCLI(t, "ls", srv, path).expect(0).stdout.String(); !strings.Contains(out, "no contenders") {
		t.Fatalf("ls after release:\n%s", out)
	}
}

func (c *cli) expectExit(t testing.TB, code int) {
	t.Helper()
	c.wait(time.Minute)
	c.expect(code)
}

// A holder cut off from ZooKeeper must stop its command (the whole process
// group) and exit with the lost code within about the session timeout.
func TestLockLostSignalsChild(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	proxy := zkc.Proxy(t)
	path := zktest.Root(t) + "/lock"
	holder := start(t, false, "lock", "--servers="+strings.Join(proxy.Addrs(), ","), "--session-timeout=2s", "--grace=10s", path, "--",
		"sh", "-c", `trap 'echo got TERM; exit 143' TERM; sleep 60 & echo sleeper $!; wait`)
	holder.waitOutput("sleeper", time.Minute)
	sleeper := token(t, field(t, holder.stdout.String(), "sleeper"))

	cut := time.Now()
	proxy.Set(zktest.Blackhole)
	holder.expectExit(t, exitLost)
	took := time.Since(cut)
	// 2s session timeout; generous for a loaded machine, but well under
	// the grace period plus sleep 60.
	if took > 20*time.Second {
		t.Fatalf("lost code after %v", took)
	}
	if !strings.Contains(holder.stdout.String(), "got TERM") {
		t.Fatalf("child not signalled; stdout:\n%s\nstderr:\n%s", holder.stdout, holder.stderr)
	}
	if !strings.Contains(holder.stderr.String(), "lost") {
		t.Fatalf("no loss message on stderr:\n%s", holder.stderr)
	}
	// The child's own child (the process group) is gone too.
	waitGone(t, int(sleeper))
	t.Logf("exit %d after %v; stderr: %s", exitLost, took.Round(time.Millisecond), holder.stderr)

	// The server expires the session: the lock becomes free.
	runCLI(t, "lock", servers(t), "--timeout=30s", path, "--", "true").expect(0)
}

func waitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := syscall.Kill(pid, 0)
		if err == syscall.ESRCH || zombie(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestLockForwardsSignalsThenReleases(t *testing.T) {
	srv := servers(t)
	path := zktest.Root(t) + "/lock"
	holder := start(t, false, "lock", srv, path, "--",
		"sh", "-c", `trap 'echo got INT; kill $!; exit 3' INT; echo started; sleep 60 & wait`)
	holder.waitOutput("started", time.Minute)
	if err := holder.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	holder.expectExit(t, 3)
	if !strings.Contains(holder.stdout.String(), "got INT") {
		t.Fatalf("child did not get SIGINT:\n%s", holder.stdout)
	}
	runCLI(t, "lock", srv, "--try", path, "--", "true").expect(0)

	// A signal while waiting aborts the wait: 128+signal.
	holder = start(t, true, "lock", srv, path, "--", "sh", "-c", "echo started; read x || true")
	holder.waitOutput("started", time.Minute)
	waiter := start(t, false, "lock", srv, path, "--", "echo", "ran")
	waitContenders(t, srv, path, 2)
	if err := waiter.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waiter.expectExit(t, 128+int(syscall.SIGTERM))
	if strings.Contains(waiter.stdout.String(), "ran") {
		t.Fatal("command ran after the wait was aborted")
	}
	waitContenders(t, srv, path, 1)
}

func waitContenders(t testing.TB, srv, path string, n int) listing {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := runCLI(t, "ls", srv, "--json", path).expect(0).stdout.String()
		var l listing
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("ls --json: %v\n%s", err, out)
		}
		if len(l.Contenders) == n {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d contenders:\n%s", n, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRevoke(t *testing.T) {
	srv := servers(t)
	path := zktest.Root(t) + "/lock"

	runCLI(t, "revoke", srv, path).expect(0) // nobody holds it

	// A --revocable holder stops its command and exits 6 when asked.
	holder := start(t, false, "lock", srv, "--revocable", path, "--",
		"sh", "-c", `trap 'echo got TERM; exit 143' TERM; echo started; sleep 60 & wait`)
	holder.waitOutput("started", time.Minute)
	c := runCLI(t, "revoke", srv, path).expect(0)
	if !strings.Contains(c.stdout.String(), identityOf(t, holder)) {
		t.Fatalf("revoke did not name the holder:\n%s", c.stdout)
	}
	holder.expectExit(t, exitRevoked)
	if !strings.Contains(holder.stdout.String(), "got TERM") {
		t.Fatalf("revoked holder's child not signalled:\n%s", holder.stdout)
	}

	// A plain holder ignores the request; a forced break deletes its node,
	// which it notices (node watch): it stops its command and exits 5.
	holder = start(t, false, "lock", srv, path, "--",
		"sh", "-c", `trap 'echo got TERM; exit 143' TERM; echo started; sleep 60 & wait`)
	holder.waitOutput("started", time.Minute)
	c = runCLI(t, "revoke", srv, "--break-after", "500ms", "--yes", path).expect(0)
	if !strings.Contains(c.stdout.String(), "BROKEN") {
		t.Fatalf("revoke --break-after:\n%s", c.stdout)
	}
	holder.expectExit(t, exitLost)
	if !strings.Contains(holder.stdout.String(), "got TERM") {
		t.Fatalf("broken holder's child not signalled:\n%s", holder.stdout)
	}
}

func TestElect(t *testing.T) {
	srv := servers(t)
	path := zktest.Root(t) + "/election"

	listener := start(t, false, "elect", srv, "--listen", "--json", path)
	listener.waitOutput(`"leader":false`, time.Minute)

	leader := start(t, true, "elect", srv, path, "--", "sh", "-c", `echo token $ZKRECIPES_TOKEN path $ZKRECIPES_ELECTION_PATH; read x || true`)
	tok := token(t, field(t, leader.waitOutput("token", time.Minute), "token"))
	if got := field(t, leader.stdout.String(), "path"); got != path {
		t.Fatalf("ZKRECIPES_ELECTION_PATH = %q", got)
	}
	who := identityOf(t, leader)
	listener.waitOutput(who, 30*time.Second)
	var seen bool
	for _, line := range strings.Split(strings.TrimSpace(listener.stdout.String()), "\n") {
		var l leaderJSON
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("elect --listen --json line %q: %v", line, err)
		}
		if l.Leader && l.Value == who && l.Token == tok && strings.HasPrefix(l.Session, "0x") {
			seen = true
		}
	}
	if !seen {
		t.Fatalf("listener never showed leader %s token %d:\n%s", who, tok, listener.stdout)
	}

	// A second candidate waits; ls shows the leader first.
	// It holds on until stdin closes: Observe coalesces changes, so a
	// term that ends at once may never be seen by the listener.
	second := start(t, true, "elect", srv, path, "--", "sh", "-c", `echo token $ZKRECIPES_TOKEN; read x || true`)
	l := waitContenders(t, srv, path, 2)
	if l.Contenders[0].Role != "leader" || l.Contenders[0].Data != who || l.Contenders[1].Role != "candidate" || l.Recipes[0] != "election" {
		t.Fatalf("ls of the election: %+v", l)
	}
	text := start(t, false, "elect", srv, "--listen", path)
	text.waitOutput("leader value="+who, 30*time.Second)

	leader.stdin.Close() // resign: the second candidate leads
	leader.expectExit(t, 0)
	if tok2 := token(t, field(t, second.waitOutput("token", time.Minute), "token")); tok2 <= tok {
		t.Fatalf("second term's token %d not larger than %d", tok2, tok)
	}
	listener.waitOutput(identityOf(t, second), 30*time.Second)
	second.stdin.Close()
	second.expectExit(t, 0)

	for _, c := range []*cli{listener, text} {
		if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		c.expectExit(t, 0)
	}
}

// ls tells the recipes apart: read-write lock and semaphore.
func TestLsRecipes(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	srv := servers(t)
	root := zktest.Root(t)
	sess := zkc.Session(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	rw := lock.NewRWMutex(sess, root+"/rw", lock.WithData([]byte("reader")))
	for range 2 {
		l, err := rw.AcquireRead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(ctx)
	}
	wctx, wcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if l, err := rw.Acquire(wctx); err == nil {
			l.Release(ctx)
		}
	}()
	defer wg.Wait()
	defer wcancel()
	l := waitContenders(t, srv, root+"/rw", 3)
	roles := []string{l.Contenders[0].Role, l.Contenders[1].Role, l.Contenders[2].Role}
	if l.Recipes[0] != "rwlock" || roles[0] != "holder" || roles[1] != "holder" || roles[2] != "waiter" ||
		l.Contenders[2].Kind != lock.WriteKind || l.Contenders[0].Data != "reader" {
		t.Fatalf("ls of a read-write lock: %+v", l)
	}

	sem := lock.NewSemaphore(sess, root+"/sem", 2, lock.WithData([]byte("permit")))
	for range 2 {
		l, err := sem.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(ctx)
	}
	l = waitContenders(t, srv, root+"/sem", 2)
	if l.Recipes[0] != "semaphore" || l.Permits != 2 || l.Contenders[0].Role != "holder" || l.Contenders[1].Role != "holder" ||
		l.Contenders[0].Kind != lock.LeaseKind || l.Contenders[0].Data != "permit" {
		t.Fatalf("ls of a semaphore: %+v", l)
	}

	// --watch prints again on a change.
	w := start(t, false, "ls", srv, "--watch", "--interval=100ms", root+"/rw")
	w.waitOutput("waiter", 30*time.Second)
	wcancel() // the writer leaves the queue
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(w.stdout.String(), "---") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("ls --watch did not print the change:\n%s", w.stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := w.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	w.expectExit(t, 0)
}

func TestDemoShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own ZooKeeper server")
	}
	zktest.Shared(t, zktest.Config{}) // skips the test without ZooKeeper
	c := start(t, false, "demo", "--short")
	c.wait(3 * time.Minute)
	c.expect(0)
	out := c.stdout.String()
	if !strings.Contains(out, "FENCE REJECTED") || !strings.Contains(out, "stale write rejected:  true") {
		t.Fatalf("demo output:\n%s", out)
	}
}

// A command that outlives --max-hold is stopped (SIGTERM, then SIGKILL
// after --grace if it ignores it), zkrecipes exits 7, and a waiter gets
// the lock with a larger token.
func TestLockMaxHold(t *testing.T) {
	srv := servers(t)
	path := zktest.Root(t) + "/lock"

	holder := start(t, false, "lock", srv, "--max-hold", "1s", path, "--",
		"sh", "-c", `trap 'echo got TERM; exit 143' TERM; echo "token $ZKRECIPES_TOKEN"; sleep 60 & wait`)
	holder.waitOutput("token ", time.Minute)
	waiter := start(t, false, "lock", srv, path, "--", "sh", "-c", `echo "token $ZKRECIPES_TOKEN"`)
	holder.expectExit(t, exitMaxHold)
	if !strings.Contains(holder.stdout.String(), "got TERM") {
		t.Fatalf("the holder's child was not signalled:\n%s", holder.stdout)
	}
	waiter.expectExit(t, 0)
	first, second := tokenIn(t, holder.stdout.String()), tokenIn(t, waiter.stdout.String())
	if second <= first {
		t.Fatalf("waiter's token %d not larger than the expired holder's %d", second, first)
	}

	// A child that ignores SIGTERM is killed after --grace.
	stubborn := start(t, false, "lock", srv, "--max-hold", "500ms", "--grace", "300ms", path, "--",
		"sh", "-c", `trap '' TERM; echo started; sleep 60`)
	stubborn.waitOutput("started", time.Minute)
	stubborn.expectExit(t, exitMaxHold)

	runCLI(t, "lock", srv, "--max-hold", "-1s", path, "--", "true").expect(exitUsage)
}

// tokenIn returns the number after "token " in out.
func tokenIn(t *testing.T, out string) uint64 {
	t.Helper()
	i := strings.Index(out, "token ")
	if i < 0 {
		t.Fatalf("no token in %q", out)
	}
	var tok uint64
	if _, err := fmt.Sscan(out[i+len("token "):], &tok); err != nil {
		t.Fatalf("token in %q: %v", out, err)
	}
	return tok
}

// writePEM writes a certificate and its key as PEM files in dir.
func writePEM(t *testing.T, dir, name string, cert tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// The CLI over TLS: CA, client certificate and key from flags or the
// environment, digest credentials from a file; bad TLS flags are usage
// errors.
func TestTLSAndCredentialFiles(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{TLS: true})
	srv := "--servers=" + strings.Join(zkc.Addrs(), ",")
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, zkc.TLS().PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key := writePEM(t, dir, "client", zkc.TLS().ClientCert(t, "cli", time.Now().Add(time.Hour)))
	digest := filepath.Join(dir, "digest")
	if err := os.WriteFile(digest, []byte("svc:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := zktest.Root(t) + "/lock"

	c := runCLI(t, "lock", srv, "--tls-ca", ca, "--tls-cert", cert, "--tls-key", key, "--digest-file", digest, path, "--", "sh", "-c", `echo "token $ZKRECIPES_TOKEN"`).expect(0)
	if tokenIn(t, c.stdout.String()) == 0 {
		t.Fatalf("no token over TLS:\n%s", c.stdout)
	}
	env := startEnv(t, []string{"ZK_TLS_CA=" + ca, "ZK_TLS_CERT=" + cert, "ZK_TLS_KEY=" + key}, false,
		"lock", srv, path, "--", "sh", "-c", `echo "token $ZKRECIPES_TOKEN"`)
	env.expectExit(t, 0)

	runCLI(t, "lock", srv, "--connect-timeout", "3s", path, "--", "true").expect(exitError) // plain client, TLS port
	runCLI(t, "lock", srv, "--tls-ca", ca, "--tls-cert", cert, path, "--", "true").expect(exitUsage)
	runCLI(t, "lock", srv, "--tls-ca", filepath.Join(dir, "missing.pem"), path, "--", "true").expect(exitUsage)
	runCLI(t, "lock", srv, "--tls-ca", digest, path, "--", "true").expect(exitUsage) // not PEM
}
