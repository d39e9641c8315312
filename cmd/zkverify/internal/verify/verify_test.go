package verify

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zkrecipes/zkrecipes/zktest"
)

var (
	flagSeed     = flag.Int64("verify.seed", 0, "run this seed only (0: the CI seed list)")
	flagDuration = flag.Duration("verify.duration", 0, "nemesis duration per seed (default 60s)")
	flagWorkers  = flag.Int("verify.workers", 4, "worker processes")
	flagKeep     = flag.Bool("verify.keep", false, "keep the history directory of passing runs")
	flagWLs      = flag.String("verify.workloads", strings.Join(DefaultWorkloads, ","), "workloads")
)

// CI seeds and duration: 3 × ~90 s (60 s of faults + setup, calm phase and
// shutdown) on two cores.
var ciSeeds = []int64{1, 2, 3}

const (
	ciDuration     = 60 * time.Second
	sessionTimeout = 2 * time.Second
	tickTime       = 200 * time.Millisecond
)

var (
	raceOn    bool
	workerBin string
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "zkverify-bin-")
	if err != nil {
		panic(err)
	}
	workerBin = filepath.Join(dir, "zkverify")
	args := []string{"build", "-o", workerBin}
	// Workers are built with -race only on request: go-zookeeper v1.0.4 has a
	// data race of its own (recvLoop writes lastZxid while sendSetWatches
	// reads it after a reconnect), which the nemesis's reconnects trigger.
	if raceOn && os.Getenv("VERIFY_WORKER_RACE") == "1" {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "../..")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the worker:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("randomized fault runs take minutes")
	}
	dur := *flagDuration
	if dur == 0 {
		dur = ciDuration
	}
	seeds := ciSeeds
	if *flagSeed != 0 {
		seeds = []int64{*flagSeed}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runSeed(t, seed, dur) })
	}
}

// recorder collects the history of a run.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) add(e Event) {
	if e.T == 0 {
		e.T = now()
	}
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// slot is one worker position: its own proxy, and the current process.
type slot struct {
	idx   int
	proxy *zktest.Proxy
	incar int

	mu      sync.Mutex
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	done    chan struct{}
	sess    int64
	pass    []byte
	exitErr error
	killed  bool
}

type harness struct {
	t     *testing.T
	seed  int64
	dir   string
	root  string
	rec   *recorder
	fence *Fence
	zkc   *zktest.Cluster
	slots []*slot
	wls   []string
	start time.Time
	sched *os.File
	wg    sync.WaitGroup
}

func (h *harness) logf(format string, args ...any) {
	msg := fmt.Sprintf("+%6.2fs ", time.Since(h.start).Seconds()) + fmt.Sprintf(format, args...)
	h.t.Log(msg)
	fmt.Fprintln(h.sched, msg)
}

func (h *harness) startWorker(s *slot) {
	s.incar++
	name := fmt.Sprintf("w%d.%d", s.idx, s.incar)
	cmd := exec.Command(workerBin, "-name", name, "-servers", strings.Join(s.proxy.Addrs(), ","),
		"-fence", h.fence.URL, "-root", h.root, "-workloads", strings.Join(h.wls, ","),
		"-session-timeout", sessionTimeout.String(), "-server-tick", tickTime.String(), "-seed", fmt.Sprint(h.seed*100+int64(s.idx*10+s.incar)))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := os.Create(filepath.Join(h.dir, name+".stderr"))
	if err != nil {
		h.t.Fatal(err)
	}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.rec.add(Event{Src: "orchestrator", Type: EvWorkerStart, Note: name, Slot: s.idx})
	done := make(chan struct{})
	s.mu.Lock()
	s.name, s.cmd, s.stdin, s.done, s.sess, s.pass, s.killed = name, cmd, in, done, 0, nil, false
	s.mu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				h.rec.add(Event{Src: name, Type: "garbage", Note: sc.Text()})
				continue
			}
			if e.Type == EvSession {
				pw, _ := hex.DecodeString(e.Pass)
				s.mu.Lock()
				if s.name == name {
					s.sess, s.pass = e.Sess, pw
				}
				s.mu.Unlock()
			}
			h.rec.add(e)
		}
		err := cmd.Wait()
		stderr.Close()
		ev := Event{Src: "orchestrator", Type: EvWorkerExit, Note: name, Slot: s.idx}
		if err != nil {
			ev.Err = err.Error()
		}
		h.rec.add(ev)
		s.mu.Lock()
		s.exitErr = err
		s.mu.Unlock()
		close(done)
	}()
}

func (h *harness) signal(s *slot, sig syscall.Signal) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		s.killed = true
	}
	return s.name
}

func sleep(d time.Duration) { time.Sleep(d) }

// nemesis injects one fault at a time, drawn from rng, until deadline.
func (h *harness) nemesis(rng *rand.Rand, deadline time.Time) {
	T := sessionTimeout
	zkc, t := h.zkc, h.t
	faults := []string{"kill-server", "kill-leader", "pause-server", "partition-worker", "drop-create-reply",
		"freeze-worker", "kill-worker", "expire-session", "isolate-leader", "isolate-follower"}
	for time.Now().Before(deadline) {
		quiet := time.Duration(1000+rng.Intn(2000)) * time.Millisecond
		sleep(quiet)
		f := faults[rng.Intn(len(faults))]
		s := h.slots[rng.Intn(len(h.slots))]
		d := time.Duration(500+rng.Intn(3500)) * time.Millisecond
		rec := func(note string) {
			h.rec.add(Event{Src: "nemesis", Type: EvNemesis, Note: note, Slot: s.idx, Dur: int64(d)})
		}
		heal := func(note string) { h.rec.add(Event{Src: "nemesis", Type: EvHeal, Note: note}) }
		switch f {
		case "kill-server":
			i := rng.Intn(len(zkc.Addrs()))
			h.logf("nemesis: kill -9 server %d for %v", i, d)
			rec(fmt.Sprintf("kill-server %d", i))
			zkc.Kill(t, i)
			sleep(d)
			zkc.Restart(t, i)
			zkc.WaitQuorum(t)
			heal("restart")
		case "kill-leader":
			h.logf("nemesis: kill -9 the leader for %v", d)
			rec("kill-leader")
			i := zkc.KillLeader(t)
			h.logf("nemesis:   leader was server %d", i)
			sleep(d)
			zkc.Restart(t, i)
			zkc.WaitQuorum(t)
			heal("restart")
		case "pause-server":
			i := rng.Intn(len(zkc.Addrs()))
			h.logf("nemesis: SIGSTOP server %d for %v", i, d)
			rec(fmt.Sprintf("pause-server %d", i))
			zkc.Pause(t, i)
			sleep(d)
			zkc.Resume(t, i)
			zkc.WaitQuorum(t)
			heal("resume")
		case "isolate-leader":
			d = time.Duration(2000+rng.Intn(4000)) * time.Millisecond
			h.logf("nemesis: isolate the leader from the other servers for %v", d)
			rec("isolate-leader")
			i := zkc.IsolateLeader(t)
			h.logf("nemesis:   leader was server %d", i)
			sleep(d)
			zkc.Heal(t)
			zkc.WaitQuorum(t)
			h.logf("nemesis:   healed; leader is server %d", zkc.Leader())
			heal("heal")
		case "isolate-follower":
			d = time.Duration(2000+rng.Intn(4000)) * time.Millisecond
			k := 1 + rng.Intn(len(zkc.Addrs())-1) // k-th server after the leader
			leader := zkc.WaitLeader(t)
			i := (leader + k) % len(zkc.Addrs())
			h.logf("nemesis: isolate follower %d (leader %d) from the other servers for %v", i, leader, d)
			rec(fmt.Sprintf("isolate-follower %d", i))
			zkc.Isolate(t, i)
			sleep(d)
			zkc.Heal(t)
			zkc.WaitQuorum(t)
			heal("heal")
		case "partition-worker":
			d = []time.Duration{T * 3 / 10, T, T * 5 / 2}[rng.Intn(3)]
			s.mu.Lock()
			name := s.name
			s.mu.Unlock()
			h.logf("nemesis: cut %s from the ensemble (blackhole) for %v", name, d)
			rec("partition-worker " + name)
			s.proxy.Set(zktest.Blackhole)
			h.rec.add(Event{Src: "nemesis", Type: EvPartition, Note: name})
			sleep(d)
			s.proxy.Set(zktest.Pass)
			h.rec.add(Event{Src: "nemesis", Type: EvUnpartition, Note: name})
			heal("pass")
		case "drop-create-reply":
			s.mu.Lock()
			name := s.name
			s.mu.Unlock()
			h.logf("nemesis: drop the next create reply of %s", name)
			rec("drop-create-reply " + name)
			ch := s.proxy.DropNextReply(zktest.CreateOps...)
			select {
			case <-ch:
				h.logf("nemesis:   dropped")
			case <-time.After(3 * time.Second):
				s.proxy.DropNextReply(zktest.OpCreateTTL) // disarm: never used by the recipes
				h.logf("nemesis:   no create within 3s")
			}
			heal("drop-create-reply")
		case "freeze-worker":
			d = T*3/2 + time.Duration(rng.Int63n(int64(T*3/2)))
			s.mu.Lock()
			name := s.name
			s.mu.Unlock()
			h.logf("nemesis: SIGSTOP %s for %v", name, d)
			rec("freeze-worker " + name)
			// Recorded before SIGSTOP and after SIGCONT: the span covers the stop.
			h.rec.add(Event{Src: "nemesis", Type: EvFreeze, Note: name})
			h.signal(s, syscall.SIGSTOP)
			sleep(d)
			h.signal(s, syscall.SIGCONT)
			h.rec.add(Event{Src: "nemesis", Type: EvThaw, Note: name})
			heal("sigcont")
		case "kill-worker":
			name := h.signal(s, syscall.SIGKILL)
			h.logf("nemesis: kill -9 %s, start a replacement", name)
			rec("kill-worker " + name)
			h.rec.add(Event{Src: "nemesis", Type: EvWorkerKill, Note: name})
			<-s.done
			sleep(500 * time.Millisecond)
			h.startWorker(s)
			heal("replaced")
		case "expire-session":
			s.mu.Lock()
			name, id, pw := s.name, s.sess, s.pass
			s.mu.Unlock()
			if id == 0 {
				continue
			}
			h.logf("nemesis: expire %s's session %#x", name, id)
			rec("expire-session " + name)
			if err := zkc.TryExpireID(id, pw); err != nil {
				// Not confirmed (a server cut off or down still lists it):
				// the schedule goes on; the checkers judge what happened.
				h.logf("nemesis:   %v", err)
			} else {
				h.rec.add(Event{Src: "nemesis", Type: EvExpired, Note: name})
			}
			heal("expired")
		}
	}
}

func runSeed(t *testing.T, seed int64, dur time.Duration) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("zkverify-seed%d-", seed))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, seed: seed, dir: dir, rec: &recorder{}, wls: strings.Split(*flagWLs, ","), start: time.Now()}
	h.sched, _ = os.Create(filepath.Join(dir, "schedule.txt"))
	defer h.sched.Close()
	t.Logf("seed %d, duration %v, %d workers, workloads %v; history in %s", seed, dur, *flagWorkers, h.wls, dir)
	var wls []Workload
	for _, n := range h.wls {
		wl, ok := Workloads[n]
		if !ok {
			t.Fatalf("unknown workload %q", n)
		}
		wls = append(wls, wl)
	}

	// Peer proxies: the nemesis isolates servers from each other (loopback,
	// no network namespaces needed).
	// syncLimit·tickTime (3 s) > the session timeout (2 s): a follower
	// isolated from its peers keeps answering its clients after the leader
	// could have expired their sessions; the workers' leases must end first.
	h.zkc = zktest.StartCluster(t, zktest.Config{Servers: 3, PeerProxies: true, TickTime: tickTime, SyncLimit: 15})
	h.root = zktest.Root(t)
	if h.fence, err = StartFence(h.rec.add); err != nil {
		t.Fatal(err)
	}
	defer h.fence.Close()
	var paths []string
	for _, wl := range wls {
		paths = append(paths, wl.Paths(h.root)...)
	}
	obsConn := newFreshConn(h.zkc.Addrs())
	defer obsConn.Close()
	obsCtx, obsStop := contextWithCancel()
	obs := StartObserver(obsCtx, obsConn, paths, h.rec.add)

	for i := 0; i < *flagWorkers; i++ {
		s := &slot{idx: i, proxy: h.zkc.Proxy(t)}
		h.slots = append(h.slots, s)
		h.startWorker(s)
	}
	// Everyone must have a session before faults start.
	for _, s := range h.slots {
		for i := 0; ; i++ {
			s.mu.Lock()
			ok := s.sess != 0
			s.mu.Unlock()
			if ok {
				break
			}
			if i > 200 {
				t.Fatalf("worker %d got no session", s.idx)
			}
			sleep(100 * time.Millisecond)
		}
	}
	h.logf("workers up; nemesis for %v", dur)

	rng := rand.New(rand.NewSource(seed))
	h.nemesis(rng, time.Now().Add(dur))

	// Final heal: everything passes, nothing is stopped, all servers serve.
	for _, s := range h.slots {
		s.proxy.Set(zktest.Pass)
	}
	h.zkc.Heal(t)
	h.zkc.WaitQuorum(t)
	healT := now()
	h.rec.add(Event{T: healT, Src: "nemesis", Type: EvHeal, Note: "final"})
	bounds := defaultBounds
	h.logf("healed; calm for %v", bounds.Liveness)
	sleep(bounds.Liveness)

	// Stop the workers: they release what they hold and close their sessions.
	h.logf("stopping workers")
	for _, s := range h.slots {
		s.mu.Lock()
		s.stdin.Close()
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.mu.Unlock()
	}
	var extra []Violation
	for _, s := range h.slots {
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			extra = append(extra, Violation{"shutdown", now(), s.name + " did not exit within 20s of SIGTERM"})
			h.signal(s, syscall.SIGKILL)
			<-s.done
		}
	}
	h.wg.Wait()
	// Worker processes that failed on their own (panic, race report).
	for _, e := range h.rec.snapshot() {
		if e.Type == EvWorkerExit && e.Err != "" {
			killed := false
			for _, k := range h.rec.snapshot() {
				if k.Type == EvWorkerKill && k.Note == e.Note {
					killed = true
				}
			}
			if !killed {
				extra = append(extra, Violation{"worker-exit", e.T, fmt.Sprintf("%s exited with %s (see %s.stderr)", e.Note, e.Err, e.Note)})
			}
		}
	}
	// No orphans at the end: all recipe paths empty once the workers are
	// gone (killed workers' sessions need up to a session timeout).
	var left map[string][]string
	for end := time.Now().Add(2*sessionTimeout + 5*time.Second); ; {
		left, err = Children(obsConn, paths)
		if err == nil && len(left) == 0 || time.Now().After(end) {
			break
		}
		sleep(250 * time.Millisecond)
	}
	if err != nil {
		extra = append(extra, Violation{"orphans", now(), "final listing failed: " + err.Error()})
	} else if len(left) > 0 {
		extra = append(extra, Violation{"orphans", now(), fmt.Sprintf("recipe paths not empty after all workers exited: %v", left)})
	}
	sleep(PollEvery * 2)
	obsStop()
	obs.Wait()
	end := now()

	hist := NewHistory(h.rec.snapshot(), bounds, wls, h.root, healT, end)
	viol := append(hist.Check(), extra...)
	stats := hist.Stats()
	t.Logf("seed %d: %s", seed, stats)
	if !hist.RegistersVerified() {
		t.Logf("seed %d: linearizability NOT VERIFIED: porcupine gave no answer within %v", seed, RegisterTimeout)
	}
	writeJSONL(filepath.Join(dir, "history.jsonl"), hist.Events)
	writeJSONL(filepath.Join(dir, "violations.jsonl"), viol)
	os.WriteFile(filepath.Join(dir, "stats.txt"), []byte(stats+"\n"), 0o644)
	if len(viol) > 0 {
		for i := range 3 {
			if p := h.zkc.LogPath(i); p != "" {
				if b, err := os.ReadFile(p); err == nil {
					os.WriteFile(filepath.Join(dir, fmt.Sprintf("server%d.log", i)), b, 0o644)
				}
			}
		}
		var b strings.Builder
		for i, v := range viol {
			if i == 20 {
				fmt.Fprintf(&b, "  ... %d more in violations.jsonl\n", len(viol)-20)
				break
			}
			fmt.Fprintf(&b, "  %s\n", v)
		}
		t.Errorf("seed %d: %d violations (replay: go -C cmd test ./zkverify/internal/verify/ -run TestVerify -verify.seed=%d -verify.duration=%v)\n%s"+
			"history, schedule, worker stderr and server logs kept in %s", seed, len(viol), seed, dur, b.String(), dir)
		return
	}
	t.Logf("seed %d: no violations", seed)
	if !*flagKeep {
		os.RemoveAll(dir)
	} else {
		t.Logf("kept %s", dir)
	}
}

func writeJSONL[T any](path string, xs []T) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, x := range xs {
		enc.Encode(x)
	}
	w.Flush()
}

var defaultBounds = Bounds{SessionTimeout: sessionTimeout, Slack: 1500 * time.Millisecond, Liveness: 12 * time.Second}
