package election_test

// Benchmarks of leader election with 100 candidates, against go-zookeeper's
// zk.Lock used as an election, on one 3-node ensemble with fsync on, shared
// by every benchmark of the run (zktest.Shared starts it lazily on first
// use; it accepts any number of connections per client address).
//
//	go test -run '^$' -bench 'Handoff100' -benchtime 20x ./election/
//	go test -run '^$' -bench 'Kill100' -benchtime 5x ./election/
//
// Every candidate has its own session, session i on server i%3. The
// hand-off benchmarks report, besides ns/op:
//
//   - p50-ms, p99-ms: quantiles of the hand-off latency, from the call
//     that ends the leader's term (Term.Release, zk.Lock.Unlock) to the
//     moment the next candidate's Acquire (Lock) returns;
//   - handoffs/s: b.N / elapsed time;
//   - cpu-ns/op: user+sys CPU of this process (the 100 clients: the servers
//     are separate JVM processes) per hand-off, from getrusage(RUSAGE_SELF).
//
// With fewer than 100 hand-offs (-benchtime 20x), p99 is the maximum.
//
// BenchmarkElectionKill100 kills a leader process (this test binary,
// re-executed to run TestElectionKillChild, in bench_child_test.go) and
// reports failover-ms, max-failover-ms, over-timeout-ms, silent-ms and
// expiry-lag-ms (see there).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/internal/benchkit"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

const (
	// benchCandidates is the size of the field.
	benchCandidates = 100
	// benchSessionTimeout is the session timeout of the benchmarks'
	// in-process candidates, ours and zk.Lock's alike.
	benchSessionTimeout = benchkit.SessionTimeout
	// benchChildTimeout is the session timeout of BenchmarkElectionKill100's
	// leader process: what its failover waits for.
	benchChildTimeout = 2 * time.Second
)

// benchSessions connects n sessions at once, session i to server i%3
// alone; b.Cleanup closes them.
func benchSessions(b *testing.B, zkc *zktest.Cluster, n int) []*recipes.Session {
	b.Helper()
	addrs := zkc.Addrs()
	opts := benchkit.SessionOptions(zkc, benchSessionTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sessions := make([]*recipes.Session, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := i % len(addrs)
			sessions[i], errs[i] = recipes.Connect(ctx, addrs[a:a+1], opts...)
		}()
	}
	wg.Wait()
	b.Cleanup(func() {
		var wg sync.WaitGroup
		for _, s := range sessions {
			if s != nil {
				wg.Add(1)
				go func() { defer wg.Done(); _ = s.Close() }()
			}
		}
		wg.Wait()
	})
	if err := errors.Join(errs...); err != nil {
		b.Fatalf("connect %d sessions: %v", n, err)
	}
	return sessions
}

// benchWaitQueued waits, on watches, until path has n children: the
// candidates are all in the queue.
func benchWaitQueued(b *testing.B, obs *zk.Conn, path string, n int) {
	b.Helper()
	timeout := time.After(patience)
	for {
		children, _, ch, err := obs.ChildrenW(path)
		if errors.Is(err, zk.ErrNoNode) {
			// Created through another server, which this observer's
			// server has not caught up with yet: wait for it.
			var ok bool
			if ok, _, ch, err = obs.ExistsW(path); err == nil && ok {
				continue
			}
		}
		if err != nil {
			b.Fatalf("children of %s: %v", path, err)
		}
		if len(children) == n {
			return
		}
		if len(children) > n {
			b.Fatalf("%d candidates in %s, want %d", len(children), path, n)
		}
		select {
		case <-ch:
		case <-timeout:
			b.Fatalf("%d candidates in %s after %v, want %d", len(children), path, patience, n)
		}
	}
}

// benchWaitGroup waits for wg, failing the benchmark after d.
func benchWaitGroup(b *testing.B, wg *sync.WaitGroup, d time.Duration, what string) {
	b.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		b.Errorf("%s: still running after %v", what, d) // the leak check fails the run too
	}
}

// benchCandidate is one candidate of a hand-off benchmark: campaign blocks
// until it leads (its token, 0 if it has none), resign ends its term.
type benchCandidate interface {
	campaign(ctx context.Context) (int64, error)
	resign(ctx context.Context) error
}

type benchTermCandidate struct {
	e    *election.Election
	term *election.Term
}

func (c *benchTermCandidate) campaign(ctx context.Context) (int64, error) {
	t, err := c.e.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	c.term = t
	return int64(t.Token()), nil
}

func (c *benchTermCandidate) resign(ctx context.Context) error {
	if err := c.term.Release(ctx); err != nil {
		return err
	}
	if err := c.term.Err(); !errors.Is(err, election.ErrReleased) {
		return fmt.Errorf("term %s after Release: %v", c.term.Path(), err)
	}
	return nil
}

// benchZkLockCandidate is go-zookeeper's zk.Lock as a candidate: Lock
// campaigns (it cannot be cancelled: closing its connection ends it),
// Unlock resigns.
type benchZkLockCandidate struct{ l *zk.Lock }

func (c benchZkLockCandidate) campaign(context.Context) (int64, error) { return 0, c.l.Lock() }
func (c benchZkLockCandidate) resign(context.Context) error            { return c.l.Unlock() }

// benchGrant is a term granted to candidate who at time at.
type benchGrant struct {
	who   int
	at    time.Time
	token int64
	next  chan struct{} // closed once the benchmark has ended the term: campaign again
}

// BenchmarkElectionHandoff100: 100 candidates, each on its own session,
// campaign on one election (Election.Acquire); one op is a hand-off: the
// leader's Term.Release, until the next candidate's Acquire returns its
// term. The released candidate campaigns again at once, at the back of the
// queue, so the field stays at 100 candidates and the leadership goes
// round the field. Every grant is checked: nobody else holds a term, the
// token is larger than the previous term's, and the previous term reports
// ErrReleased.
func BenchmarkElectionHandoff100(b *testing.B) {
	zkc := benchkit.Cluster(b)
	path := zktest.Root(b)
	cands := make([]benchCandidate, benchCandidates)
	for i, s := range benchSessions(b, zkc, benchCandidates) {
		cands[i] = &benchTermCandidate{e: election.NewElection(s, path)}
	}
	benchHandoff(b, zkc.Conn(b), path, cands, func() {})
}

// BenchmarkZkLockHandoff100 is BenchmarkElectionHandoff100 with
// go-zookeeper's zk.Lock as the election: 100 connections (sessions), one
// zk.Lock each on one path; one op is the holder's Unlock, until the next
// contender's Lock returns. The baseline: a bare predecessor-watch queue,
// without tokens, session-state tracking or ownership checks.
func BenchmarkZkLockHandoff100(b *testing.B) {
	zkc := benchkit.Cluster(b)
	path := zktest.Root(b)
	conns := benchkit.RawConns(b, zkc.Addrs(), benchCandidates)
	cands := make([]benchCandidate, benchCandidates)
	for i, conn := range conns {
		cands[i] = benchZkLockCandidate{zk.NewLock(conn, path, zk.WorldACL(zk.PermAll))}
	}
	benchHandoff(b, zkc.Conn(b), path, cands, func() {
		var wg sync.WaitGroup
		for _, conn := range conns {
			wg.Add(1)
			go func() { defer wg.Done(); conn.Close() }() // ends the Locks waiting in the queue
		}
		wg.Wait()
	})
}

// benchHandoff runs one goroutine per candidate, each campaigning, handing
// its term to the benchmark and, once the benchmark has ended that term,
// campaigning again. Once every candidate is in the queue, it times b.N
// hand-offs. At the end it cancels the campaigns and calls stop (to end
// those that ignore the context), and waits for the goroutines.
func benchHandoff(b *testing.B, obs *zk.Conn, path string, cands []benchCandidate, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg      sync.WaitGroup
		holders atomic.Int32 // terms granted and not yet ended by the benchmark
	)
	grants := make(chan benchGrant)
	errs := make(chan error, len(cands)) // one per goroutine at most
	b.Cleanup(func() {
		cancel()
		stop()
		benchWaitGroup(b, &wg, patience, "candidates")
	})
	for i, c := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				tok, err := c.campaign(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("candidate %d: campaign: %w", i, err)
					}
					return
				}
				g := benchGrant{who: i, at: time.Now(), token: tok, next: make(chan struct{})}
				if n := holders.Add(1); n != 1 {
					errs <- fmt.Errorf("candidate %d was granted a term while %d other(s) held one", i, n-1)
					return
				}
				select {
				case grants <- g:
				case <-ctx.Done():
					return
				}
				select {
				case <-g.next:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wait := func(what string) benchGrant {
		b.Helper()
		select {
		case g := <-grants:
			return g
		case err := <-errs:
			b.Fatal(err)
		case <-time.After(patience):
			b.Fatalf("%s: no term granted within %v", what, patience)
		}
		return benchGrant{}
	}
	cur := wait("first term")
	benchWaitQueued(b, obs, path, len(cands))

	lat := make([]time.Duration, 0, b.N)
	benchkit.Measure(b, "handoffs/s", func() {
		for range b.N {
			holders.Add(-1)
			rctx, rcancel := context.WithTimeout(ctx, patience)
			start := time.Now()
			err := cands[cur.who].resign(rctx)
			rcancel()
			if err != nil {
				b.Fatalf("candidate %d: resign: %v", cur.who, err)
			}
			close(cur.next) // it campaigns again, at the back of the queue
			g := wait("hand-off")
			lat = append(lat, g.at.Sub(start))
			if g.who == cur.who {
				b.Fatalf("candidate %d led twice in a row among %d", g.who, len(cands))
			}
			if g.token != 0 && g.token <= cur.token {
				b.Fatalf("token %d after %d: not larger", g.token, cur.token)
			}
			cur = g
		}
	})
	b.ReportMetric(benchkit.Quantile(lat, 0.50), "p50-ms")
	b.ReportMetric(benchkit.Quantile(lat, 0.99), "p99-ms")
}

// BenchmarkElectionKill100 measures failover after the leader dies: the
// leader is another OS process (this test binary re-executed to run
// TestElectionKillChild) with a benchChildTimeout (2 s) session; 99
// candidates, each on its own session in this process, queue behind it.
// One op: SIGKILL the leader, until one of the 99 candidates' Acquire
// returns its term. Each op is about the session timeout, so keep b.N
// small: the default -benchtime runs one op per round, -benchtime 5x five
// kills. Every op starts from an empty election at a path of its own: the
// child campaigns first and leads, then the 99 campaign behind it; after
// the failover the op checks that exactly one of them was granted a term
// (and with a token larger than the child's), cancels the others' campaigns
// and releases the term. ns/op times only the kill-to-term part.
//
// It reports (medians over the ops, but for the max):
//
//   - failover-ms, max-failover-ms: from the kill to the new term;
//   - over-timeout-ms: failover-ms minus the child's negotiated session
//     timeout;
//   - silent-ms: from the child's last packet to its server (the child
//     reports each write) to the kill;
//   - expiry-lag-ms: from the end of the timeout counted from that last
//     packet to the moment an observer connection (on any server) is told
//     that the child's node is gone: the server's share of the overshoot.
//
// So over-timeout ≈ expiry-lag − silent + the candidate's share (its
// notification and re-list: the term comes within a millisecond or two of
// the observer's notification). Each op logs its figures, with the server
// the child was on (the ensemble leader or a follower).
//
// Why the failover is the session timeout, give or take a few hundred
// milliseconds, and no more: a killed client sends nothing more (its server
// closes the dead connection at once, but that does not end the session),
// and the session, and the child's ephemeral node with it, lives until the
// ensemble leader's session tracker expires it. The tracker works in
// ticks: every packet from the client (its recipes.Session sends a sync
// every (timeout − margin − tickTime)/5, once the previous one is answered; go-zookeeper pings
// every timeout/3) sets the session's expiry to roundUp(now + timeout),
// the next multiple of tickTime (200 ms here) strictly after, and the
// tracker expires a tick's sessions at that tick. A session on a follower
// is touched on the leader only when the follower answers the leader's
// ping (every tickTime/2) with the sessions its clients touched. So,
// counted from the client's last packet, the leader expires the session
// after timeout + up to tickTime (the rounding) + up to tickTime/2 (on a
// follower). Then come: the closeSession transaction (proposed, fsynced by
// a quorum, committed), which deletes the child's node on each server as
// it is applied; that server's notification to the watch on it (the next
// candidate's: it watches only its predecessor); the candidate's re-list
// of the queue, to see that it is first. Altogether expiry-lag is in
// (0, 1.5·tickTime] plus one fsynced write, and the candidate's share is a
// millisecond or two on an idle machine. Counted from the kill, subtract
// the silence before it: up to a sync interval, (timeout − margin −
// tickTime)/5, plus a sync's round trip, more on
// a loaded machine. So over-timeout-ms is between −silent-ms and
// 1.5·tickTime + a write + a round trip: it can be negative.
func BenchmarkElectionKill100(b *testing.B) {
	zkc := benchkit.Cluster(b)
	obs := zkc.Conn(b)
	root := zktest.Root(b)
	sessions := benchSessions(b, zkc, benchCandidates-1)
	var failovers, overs, silents, lags []time.Duration
	b.ResetTimer()
	b.StopTimer()
	for op := range b.N {
		f := benchKill(b, zkc, obs, fmt.Sprintf("%s/op%d", root, op), sessions)
		failovers = append(failovers, f.failover)
		overs = append(overs, f.failover-f.timeout)
		silents = append(silents, f.silent)
		lags = append(lags, f.silent+f.deleted-f.timeout)
	}
	b.ReportMetric(benchkit.Quantile(failovers, 0.5), "failover-ms")
	b.ReportMetric(benchkit.Ms(slices.Max(failovers)), "max-failover-ms")
	b.ReportMetric(benchkit.Quantile(overs, 0.5), "over-timeout-ms")
	b.ReportMetric(benchkit.Quantile(silents, 0.5), "silent-ms")
	b.ReportMetric(benchkit.Quantile(lags, 0.5), "expiry-lag-ms")
}

// benchFailover is what one op of BenchmarkElectionKill100 measured.
type benchFailover struct {
	failover time.Duration // from the kill to the new term
	deleted  time.Duration // from the kill to the observer's NodeDeleted
	silent   time.Duration // from the child's last packet to the kill
	timeout  time.Duration // the child's negotiated session timeout
}

// benchKill is one op of BenchmarkElectionKill100, at path.
func benchKill(b *testing.B, zkc *zktest.Cluster, obs *zk.Conn, path string, sessions []*recipes.Session) benchFailover {
	b.Helper()
	child := benchStartChild(b, zkc, path)
	lead := child.waitLeader(b)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stop := sync.OnceFunc(func() {
		cancel()
		benchWaitGroup(b, &wg, patience, "candidates")
	})
	b.Cleanup(stop)
	type result struct {
		who  int
		term *election.Term
		at   time.Time
	}
	grants := make(chan result, len(sessions)) // never blocks
	errs := make(chan error, len(sessions))
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			term, err := election.NewElection(s, path).Acquire(ctx)
			switch {
			case err == nil:
				grants <- result{i, term, time.Now()}
			case ctx.Err() == nil:
				errs <- fmt.Errorf("candidate %d: campaign: %w", i, err)
			}
		}()
	}
	benchWaitQueued(b, obs, path, len(sessions)+1)
	select {
	case g := <-grants:
		b.Fatalf("candidate %d was granted a term (token %d) while the child led (token %d)", g.who, g.term.Token(), lead.token)
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	// The observer's view of the expiry: when its server has applied the
	// closeSession and deleted the child's node.
	exists, _, watch, err := obs.ExistsW(lead.node)
	if err != nil || !exists {
		b.Fatalf("the child's node %s: exists %v, %v", lead.node, exists, err)
	}
	type event struct {
		zk.Event
		at time.Time
	}
	deletions := make(chan event, 1)
	go func() {
		ev := <-watch // or EventNotWatching when obs closes
		deletions <- event{ev, time.Now()}
	}()

	b.StartTimer()
	killed := time.Now()
	child.kill(b)
	var g result
	select {
	case g = <-grants:
	case err := <-errs:
		b.Fatal(err)
	case <-time.After(lead.timeout + patience):
		b.Fatalf("no term granted within %v of the leader's kill", lead.timeout+patience)
	}
	b.StopTimer()
	f := benchFailover{failover: g.at.Sub(killed), timeout: lead.timeout}
	select {
	case ev := <-deletions:
		if ev.Type != zk.EventNodeDeleted {
			b.Fatalf("watch on the child's node: %+v", ev.Event)
		}
		f.deleted = ev.at.Sub(killed)
	case <-time.After(patience):
		b.Fatalf("the observer saw no deletion of %s within %v of the grant", lead.node, patience)
	}
	if g.term.Token() <= election.Token(lead.token) {
		b.Fatalf("candidate %d: token %d not larger than the killed leader's %d", g.who, g.term.Token(), lead.token)
	}
	child.reap(b) // it has printed its last SENT line
	f.silent = time.Duration(killed.UnixNano() - child.lastSent.Load())
	role := "a follower"
	if l := zkc.Leader(); l >= 0 && zkc.Addrs()[l] == lead.server {
		role = "the leader"
	}
	b.Logf("child on %s (%s), silent for %v before the kill: its node deleted (seen by the observer) %v after the kill; term granted %v after the kill (candidate %d, on %s)",
		lead.server, role, f.silent.Round(time.Millisecond), f.deleted.Round(time.Millisecond),
		f.failover.Round(time.Millisecond), g.who, zkc.Addrs()[g.who%len(zkc.Addrs())])
	stop() // the others leave the queue; the winner's node stays first
	if err := g.term.Err(); err != nil {
		b.Fatalf("candidate %d: term ended before its release: %v", g.who, err)
	}
	select {
	case h := <-grants:
		b.Fatalf("two terms at once: candidates %d and %d", g.who, h.who)
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	rctx, rcancel := context.WithTimeout(context.Background(), patience)
	defer rcancel()
	if err := g.term.Release(rctx); err != nil {
		b.Fatalf("candidate %d: release: %v", g.who, err)
	}
	return f
}

// benchChild is BenchmarkElectionKill100's leader process.
type benchChild struct {
	cmd    *exec.Cmd
	leader chan string     // its LEADER line
	eof    chan struct{}   // closed when its stdout is at EOF (it exited)
	mu     sync.Mutex      // guards out and stderr
	out    strings.Builder // its other output
	stderr strings.Builder
	reaped bool
	err    error // Wait's

	lastSent atomic.Int64 // its last SENT line: when it last wrote to its server (Unix ns)
}

// benchStartChild starts the leader process, campaigning at path;
// b.Cleanup kills it if it still runs.
func benchStartChild(b *testing.B, zkc *zktest.Cluster, path string) *benchChild {
	b.Helper()
	tick := benchkit.ServerTick
	if zkc.External() {
		tick = 0
	}
	c := &benchChild{leader: make(chan string, 1), eof: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^"+benchChildTest+"$")
	c.cmd.Env = append(os.Environ(),
		benchChildEnv+"="+strings.Join(zkc.Addrs(), ","),
		benchChildPathEnv+"="+path,
		benchChildTimeoutEnv+"="+benchChildTimeout.String(),
		benchChildTickEnv+"="+tick.String(),
	)
	c.cmd.Stderr = benchWriter(func(p []byte) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.stderr.Write(p)
	})
	// The child reads its stdin until EOF: Wait closes our end, and so
	// does the kernel if this process dies, so the child never outlives us.
	if _, err := c.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", os.Args[0], err)
	}
	go func() {
		defer close(c.eof)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			var sent int64
			if _, err := fmt.Sscanf(line, "SENT %d", &sent); err == nil {
				c.lastSent.Store(sent)
			} else if strings.HasPrefix(line, "LEADER ") {
				select {
				case c.leader <- line:
				default:
				}
			} else {
				c.mu.Lock()
				c.out.WriteString(line + "\n")
				c.mu.Unlock()
			}
		}
	}()
	b.Cleanup(func() {
		if !c.reaped {
			_ = c.cmd.Process.Kill()
			c.reap(b)
		}
	})
	return c
}

// benchLeader is what the child says once it leads.
type benchLeader struct {
	token   int64
	timeout time.Duration // its negotiated session timeout
	node    string        // its candidate node
	server  string        // the server it is connected to
}

// waitLeader waits for the child's LEADER line.
func (c *benchChild) waitLeader(b *testing.B) benchLeader {
	b.Helper()
	select {
	case line := <-c.leader:
		var (
			l  benchLeader
			ms int64
		)
		if _, err := fmt.Sscanf(line, "LEADER %d %d %s %s", &l.token, &ms, &l.node, &l.server); err != nil {
			b.Fatalf("child said %q: %v", line, err)
		}
		l.timeout = time.Duration(ms) * time.Millisecond
		return l
	case <-c.eof:
		c.reap(b)
		b.Fatalf("child exited before leading: %v\n%s", c.err, c.output())
	case <-time.After(2 * patience):
		b.Fatalf("child not leading within %v\n%s", 2*patience, c.output())
	}
	return benchLeader{}
}

// kill sends SIGKILL to the child.
func (c *benchChild) kill(b *testing.B) {
	b.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		b.Fatalf("kill the leader process: %v", err)
	}
}

// reap waits for the child to exit (its stdout at EOF first, as exec
// requires) and fails the benchmark unless SIGKILL ended it.
func (c *benchChild) reap(b *testing.B) {
	b.Helper()
	if c.reaped {
		return
	}
	select {
	case <-c.eof:
	case <-time.After(patience):
		_ = c.cmd.Process.Kill()
		<-c.eof
	}
	c.err = c.cmd.Wait()
	c.reaped = true
	var ee *exec.ExitError
	if !errors.As(c.err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		b.Errorf("leader process: %v, want killed by SIGKILL\n%s", c.err, c.output())
	}
}

// benchWriter is an io.Writer that hands what it is given to a function.
type benchWriter func(p []byte)

func (w benchWriter) Write(p []byte) (int, error) {
	w(p)
	return len(p), nil
}

// output is what the child printed, besides its LEADER line.
func (c *benchChild) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return "stdout:\n" + c.out.String() + "stderr:\n" + c.stderr.String()
}
