// Package interop_test runs zkrecipes' recipes on one path with the real
// foreign clients they claim to share it with: Apache Curator (Java) and
// kazoo (Python), each in processes of its own started from testdata, and
// checks that no two holders act at once and that every holder's token is
// the czxid of its node. docs/INTEROP.md is the matrix these tests back.
package interop_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/goleak"

	"github.com/zkrecipes/zkrecipes/zktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(zktest.Wrap(m, func() {
		if classDir != "" {
			os.RemoveAll(classDir)
		}
	}))
}

// python is Debian's python3, which has python3-kazoo (a pyenv or venv
// python on PATH may not).
const python = "/usr/bin/python3"

// curatorJars are the Debian packages' jars the Curator worker needs.
var curatorJars = []string{
	"curator-client", "curator-framework", "curator-recipes", "zookeeper", "zookeeper-jute",
	"guava", "slf4j-api", "slf4j-nop", "netty-handler", "netty-transport", "netty-common",
	"netty-buffer", "netty-resolver", "netty-codec", "netty-transport-native-epoll",
	"netty-transport-native-unix-common", "commons-lang3",
}

// needKazoo skips (or, under ZKTEST_REQUIRE=1, fails) a test without kazoo.
func needKazoo(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(python, "-c", "import kazoo").CombinedOutput(); err != nil {
		missing(t, fmt.Sprintf("kazoo (Debian's python3-kazoo) not importable by %s: %v %s", python, err, out))
	}
}

var (
	compileOnce sync.Once
	classDir    string
	compileErr  error
)

// needCurator compiles the Curator worker once, or skips (fails under
// ZKTEST_REQUIRE=1) without Curator and a JDK.
func needCurator(t *testing.T) {
	t.Helper()
	compileOnce.Do(func() {
		if _, err := exec.LookPath("javac"); err != nil {
			compileErr = fmt.Errorf("javac not found (Debian's default-jdk-headless): %w", err)
			return
		}
		for _, j := range curatorJars {
			if _, err := os.Stat(jar(j)); err != nil {
				compileErr = fmt.Errorf("%s missing (Debian's libcurator-*-java): %w", jar(j), err)
				return
			}
		}
		dir, err := os.MkdirTemp("", "interop-classes-")
		if err != nil {
			compileErr = err
			return
		}
		out, err := exec.Command("javac", "-d", dir, "-cp", classpath(""), filepath.Join("testdata", "CuratorWorker.java")).CombinedOutput()
		if err != nil {
			os.RemoveAll(dir)
			compileErr = fmt.Errorf("javac: %v\n%s", err, out)
			return
		}
		classDir = dir
	})
	if compileErr != nil {
		missing(t, compileErr.Error())
	}
}

func jar(name string) string { return "/usr/share/java/" + name + ".jar" }

func classpath(first string) string {
	parts := []string{}
	if first != "" {
		parts = append(parts, first)
	}
	for _, j := range curatorJars {
		parts = append(parts, jar(j))
	}
	return strings.Join(parts, ":")
}

func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("ZKTEST_REQUIRE") == "1" {
		t.Fatalf("interop client missing: %s", why)
	}
	t.Skipf("interop client missing: %s", why)
}

// event is one line of a holder's story, as the referee sees it.
type event struct {
	who   string
	kind  string // enter, exit, fault
	write bool   // an exclusive holder (a writer); false: a reader
	tok   int64
	node  string
	at    time.Time
}

// referee checks the holders' stories as they come: no exclusive holder
// acts while anyone else does, no reader while a writer does; every
// exclusive holder's token is larger than the one before it; every token
// is the czxid of the holder's node.
type referee struct {
	t   *testing.T
	obs *zk.Conn

	mu       sync.Mutex
	active   map[string]bool // who → writer?
	faulted  map[string]bool // killed or expired: its story ended at the fault
	lastTok  int64           // of the last exclusive holder
	enters   map[string]int  // per client kind (the part of who before '#')
	verified int             // tokens checked against a node's czxid
	bad      []string        // violations
	entered  chan string     // who, at every enter
}

func newReferee(t *testing.T, obs *zk.Conn) *referee {
	return &referee{t: t, obs: obs, active: map[string]bool{}, faulted: map[string]bool{},
		enters: map[string]int{}, entered: make(chan string, 1024)}
}

func (r *referee) note(ev event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.faulted[ev.who] {
		return // it can no longer act (killed), or acts as a stale holder (expired)
	}
	switch ev.kind {
	case "fault":
		r.faulted[ev.who] = true
		delete(r.active, ev.who)
	case "exit":
		delete(r.active, ev.who)
	case "enter":
		for other, w := range r.active {
			if ev.write || w {
				r.bad = append(r.bad, fmt.Sprintf("%s entered (token %d) while %s held", ev.who, ev.tok, other))
			}
		}
		if ev.write {
			if ev.tok <= r.lastTok {
				r.bad = append(r.bad, fmt.Sprintf("%s's token %d is not larger than the previous holder's %d", ev.who, ev.tok, r.lastTok))
			}
			r.lastTok = ev.tok
		}
		r.active[ev.who] = ev.write
		r.enters[strings.SplitN(ev.who, "#", 2)[0]]++
		// The node is there while its holder holds it (a fault would be
		// noted first): its czxid must be the token.
		_, st, err := r.obs.Exists(ev.node)
		switch {
		case err != nil:
			r.bad = append(r.bad, fmt.Sprintf("%s: stat %s: %v", ev.who, ev.node, err))
		case st.Czxid == 0:
		default:
			if st.Czxid != ev.tok {
				r.bad = append(r.bad, fmt.Sprintf("%s: token %d but its node %s has czxid %d", ev.who, ev.tok, ev.node, st.Czxid))
			}
			r.verified++
		}
		select {
		case r.entered <- ev.who:
		default:
		}
	}
}

// violations returns what the referee saw go wrong so far.
func (r *referee) violations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}

// verdict fails the test on any violation and checks that every kind of
// client in kinds held the lock at least once.
func (r *referee) verdict(kinds ...string) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.Logf("holds by client: %v; tokens checked against their node: %d", r.enters, r.verified)
	for _, b := range r.bad {
		r.t.Error(b)
	}
	for _, k := range kinds {
		if r.enters[k] == 0 {
			r.t.Errorf("%s never held the lock: nothing was shared", k)
		}
	}
	total := 0
	for _, n := range r.enters {
		total += n
	}
	if r.verified*2 < total {
		r.t.Errorf("only %d of %d tokens could be checked against their node", r.verified, total)
	}
}

// worker is a foreign client's process, speaking the line protocol of
// testdata's workers.
type worker struct {
	who    string
	write  bool
	cmd    *exec.Cmd
	stdin  io.WriteCloser // a line on it lets the worker release after EXIT
	ref    *referee
	sid    int64
	passwd []byte
	ready  chan struct{} // SESSION read
	exited chan struct{} // process gone, output read
	err    error
}

// startKazoo starts kazoo_worker.py: mode lock, read, write or election.
func startKazoo(t *testing.T, ref *referee, who string, write bool, servers []string, path, mode string, rounds int, hold time.Duration, patterns ...string) *worker {
	args := append([]string{filepath.Join("testdata", "kazoo_worker.py"), strings.Join(servers, ","), path, mode,
		strconv.Itoa(rounds), strconv.Itoa(int(hold / time.Millisecond))}, patterns...)
	return startWorker(t, ref, who, write, exec.Command(python, args...))
}

// startCurator starts CuratorWorker: mode mutex, read, write or latch.
func startCurator(t *testing.T, ref *referee, who string, write bool, servers []string, path, mode string, rounds int, hold time.Duration) *worker {
	return startWorker(t, ref, who, write, exec.Command("java", "-cp", classpath(classDir), "CuratorWorker",
		strings.Join(servers, ","), path, mode, strconv.Itoa(rounds), strconv.Itoa(int(hold/time.Millisecond))))
}

func startWorker(t *testing.T, ref *referee, who string, write bool, cmd *exec.Cmd) *worker {
	t.Helper()
	w := &worker{who: who, write: write, cmd: cmd, ref: ref, ready: make(chan struct{}), exited: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if w.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.line(sc.Text())
		}
		w.err = cmd.Wait()
		if w.err != nil && !w.killed() {
			w.err = fmt.Errorf("%s: %w\n%s", who, w.err, stderr.String())
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-w.exited
	})
	return w
}

func (w *worker) killed() bool {
	w.ref.mu.Lock()
	defer w.ref.mu.Unlock()
	return w.ref.faulted[w.who]
}

func (w *worker) line(l string) {
	f := strings.Fields(l)
	if len(f) == 0 {
		return
	}
	switch f[0] {
	case "SESSION":
		if len(f) == 3 {
			w.sid, _ = strconv.ParseInt(f[1], 16, 64)
			w.passwd, _ = hex.DecodeString(f[2])
		}
		close(w.ready)
	case "ENTER":
		tok, _ := strconv.ParseInt(f[1], 10, 64)
		w.ref.note(event{who: w.who, kind: "enter", write: w.write, tok: tok, node: f[2], at: time.Now()})
	case "EXIT":
		// The worker waits for our go-ahead before it releases: the exit
		// is noted before anyone can enter after it, however late its
		// line was read.
		w.ref.note(event{who: w.who, kind: "exit", at: time.Now()})
		_, _ = io.WriteString(w.stdin, "GO\n") // fails only if it was killed
	}
}

// kill -9s the worker: its story ends now.
func (w *worker) kill() {
	w.ref.note(event{who: w.who, kind: "fault", at: time.Now()})
	w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.exited
}

// wait waits for the worker to finish its rounds.
func (w *worker) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-w.exited:
		if w.err != nil {
			t.Errorf("worker %v", w.err)
		}
	case <-time.After(d):
		t.Errorf("%s did not finish its rounds within %v", w.who, d)
	}
}

// waitEnter waits until who (or, with who "", anyone) next enters.
func (r *referee) waitEnter(t *testing.T, who string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case w := <-r.entered:
			if who == "" || w == who {
				return
			}
		case <-deadline:
			t.Fatalf("%q did not hold the lock within %v", who, d)
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
