package election_test

import (
	"bufio"
	"context"
	"errors"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/election"
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

// liveSession waits for the Client's live session.
func liveSession(t *testing.T, c *recipes.Client) *recipes.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*patience)
	defer cancel()
	s, err := c.Live(ctx)
	require.NoError(t, err, "no live session")
	return s
}

// granted waits for the Client to grant the session that replaces old.
func granted(t *testing.T, changes <-chan recipes.SessionChange, old int64, d time.Duration) recipes.SessionChange {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-changes:
			require.True(t, ok, "session changes ended")
			if ev.New != 0 && ev.Old == old {
				return ev
			}
		case <-timeout:
			t.Fatalf("no session replaced 0x%x within %v", old, d)
		}
	}
}

// served is one term of a Run.
type served struct {
	term *election.Term
	ctx  context.Context
}

// serveTerms is a Run function that reports each term and holds it until
// its context is cancelled, then returns the cause (an error returned
// after a loss must not end Run).
func serveTerms(terms chan<- served) func(context.Context) error {
	return func(ctx context.Context) error {
		terms <- served{election.TermFromContext(ctx), ctx}
		<-ctx.Done()
		return context.Cause(ctx)
	}
}

func nextTerm(t *testing.T, terms <-chan served, what string) served {
	t.Helper()
	select {
	case s := <-terms:
		require.NotNil(t, s.term, "%s: no term in fn's context", what)
		return s
	case <-time.After(2 * patience):
		t.Fatalf("%s: no term within %v", what, 2*patience)
		return served{}
	}
}

func noTerm(t *testing.T, terms <-chan served, what string) {
	t.Helper()
	select {
	case s := <-terms:
		t.Fatalf("%s: led with token %v", what, s.term.Token())
	default:
	}
}

// ownerOf returns the session owning the candidate node of term, as the
// server says (read through e).
func ownerOf(t *testing.T, e *election.Election, term *election.Term) int64 {
	t.Helper()
	ps, err := e.Participants(t.Context())
	require.NoError(t, err)
	for _, p := range ps {
		if p.Name == path.Base(term.Path()) {
			return p.Session
		}
	}
	t.Fatalf("node %s is not in the election", term.Path())
	return 0
}

// A candidate running Run(WithRequeue) on a Client whose session expires:
// fn's context is cancelled with the cause, Run goes on, the candidate
// joins the queue again on the Client's new session and, once the candidate
// that led meanwhile resigns, leads again with a larger token.
func TestClientRunRequeuesAfterExpiry(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	c := newClient(t, zkc.Addrs())
	a := election.NewElection(c, root, election.WithValue([]byte("a")), election.WithRequeue())
	b := election.NewElection(zkc.Session(t), root, election.WithValue([]byte("b")))

	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	terms := make(chan served, 4)
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx, serveTerms(terms)) }()
	t1 := nextTerm(t, terms, "a's first term")
	s1 := liveSession(t, c)
	require.Equal(t, s1.ID(), ownerOf(t, b, t1.term), "the term is on the Client's session")

	bc := campaignAsync(testCtx(t), b)
	waitParticipants(t, b, 2)
	changes := c.Subscribe(ctx)

	zkc.Expire(t, s1)
	zktest.ClosedWithin(t, t1.ctx.Done(), patience, "fn's context after a's session expired")
	cause := context.Cause(t1.ctx)
	require.ErrorIs(t, cause, election.ErrLost)
	require.True(t, isRecipesErr(cause) || strings.Contains(cause.Error(), "deleted"), "cause %v", cause)
	tb := elected(t, bc, patience, "b after a's session expired")
	require.Greater(t, tb.Token(), t1.term.Token())

	s2 := granted(t, changes, s1.ID(), 2*patience)
	require.NotEqual(t, s1.ID(), s2.New)
	// a joins the queue again on the new session, behind b.
	ps := waitParticipants(t, b, 2)
	require.Equal(t, "b", string(ps[0].Value))
	require.Equal(t, "a", string(ps[1].Value))
	require.Equal(t, s2.New, ps[1].Session, "a queues on the Client's new session")
	noTerm(t, terms, "a while b leads")
	select {
	case err := <-ran:
		t.Fatalf("Run returned after a session loss: %v", err)
	default:
	}

	resign(t, tb)
	t2 := nextTerm(t, terms, "a after b resigned")
	require.Greater(t, t2.term.Token(), tb.Token())
	require.Equal(t, s2.New, ownerOf(t, b, t2.term))
	require.NoError(t, t2.term.Err())
	t.Logf("tokens: a %#v, b %#v, a again %#v", t1.term.Token(), tb.Token(), t2.term.Token())

	cancel()
	select {
	case err := <-ran:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(patience):
		t.Fatal("Run did not return when its ctx was cancelled")
	}
	require.ErrorIs(t, t2.term.Err(), election.ErrReleased)
}

// A candidate on a Client partitioned from the ensemble (a blackholed
// proxy) past its local deadline: its term ends by the deadline, before
// the next candidate leads; Run waits while the Client cannot open a
// session, and once the partition heals leads again on a new session with
// a larger token.
func TestClientRunRequeuesAfterPartition(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	p := zkc.Proxy(t)
	c := newClient(t, p.Addrs())
	// LoseOnSessionEnd: the term lasts until the local deadline, not just
	// until the connection goes silent.
	a := election.NewElection(c, root, election.WithValue([]byte("a")), election.WithRequeue(),
		election.WithLossPolicy(recipes.LoseOnSessionEnd))
	b := election.NewElection(zkc.Session(t), root, election.WithValue([]byte("b")))

	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	terms := make(chan served, 4)
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx, serveTerms(terms)) }()
	t1 := nextTerm(t, terms, "a's first term")
	s1 := liveSession(t, c)
	bc := succeedAsync(testCtx(t), b, t1.term)
	waitParticipants(t, b, 2)
	changes := c.Subscribe(ctx)

	start := time.Now()
	p.Set(zktest.Blackhole)
	zktest.ClosedWithin(t, t1.ctx.Done(), s1.Timeout()+time.Second, "fn's context while partitioned")
	t.Logf("a's term ended %v after the partition began", time.Since(start))
	cause := context.Cause(t1.ctx)
	require.ErrorIs(t, cause, election.ErrLost)
	require.ErrorIs(t, cause, recipes.ErrDeadline)
	require.Equal(t, zktest.Blackhole, p.Mode(), "still partitioned")

	r := successor(t, bc, patience, "b after a was partitioned")
	t.Logf("b leads %v after the partition began", r.at.Sub(start))
	require.True(t, r.oldOver, "b led while a's term was not over")
	require.Greater(t, r.term.Token(), t1.term.Token())
	require.Equal(t, zktest.Blackhole, p.Mode(), "still partitioned")
	noTerm(t, terms, "a while partitioned")
	select {
	case err := <-ran:
		t.Fatalf("Run returned after a session loss: %v", err)
	default:
	}

	p.Set(zktest.Pass)
	s2 := granted(t, changes, s1.ID(), 2*patience)
	t.Logf("new session %v after the partition began", time.Since(start))
	ps := waitParticipants(t, b, 2)
	require.Equal(t, "a", string(ps[1].Value))
	require.Equal(t, s2.New, ps[1].Session, "a queues on the Client's new session")
	noTerm(t, terms, "a while b leads")

	resign(t, r.term)
	t2 := nextTerm(t, terms, "a after b resigned")
	require.Greater(t, t2.term.Token(), r.term.Token())
	require.Equal(t, s2.New, ownerOf(t, b, t2.term))

	cancel()
	select {
	case err := <-ran:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(patience):
		t.Fatal("Run did not return when its ctx was cancelled")
	}
}

// Acquire on a Client waits in the queue across the loss of its session:
// it joins again on the next session and returns a term bound to it.
func TestClientCampaignAcrossExpiry(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	c := newClient(t, zkc.Addrs())
	b := election.NewElection(zkc.Session(t), root, election.WithValue([]byte("b")))
	a := election.NewElection(c, root, election.WithValue([]byte("a")))
	tb := campaign(t, b)
	ac := campaignAsync(testCtx(t), a)
	waitParticipants(t, b, 2)
	s1 := liveSession(t, c)
	changes := c.Subscribe(testCtx(t))

	zkc.Expire(t, s1)
	s2 := granted(t, changes, s1.ID(), 2*patience)
	// b's server may still list a's old node until it applies the expiry:
	// wait for a's node of the new session.
	zktest.WaitUntil(t, patience, "a queues again on the new session", func() bool {
		ps, err := b.Participants(t.Context())
		if err != nil {
			t.Fatalf("participants: %v", err)
		}
		return len(ps) == 2 && ps[1].Session == s2.New
	})
	notYet(t, ac, "a while b leads")

	resign(t, tb)
	ta := elected(t, ac, patience, "a after b resigned")
	require.Greater(t, ta.Token(), tb.Token())
	require.Equal(t, s2.New, ownerOf(t, b, ta))
	resign(t, ta)
}

// recorder keeps what an Observe channel sends.
type recorder struct {
	mu      sync.Mutex
	seq     []election.Leader
	changed chan struct{} // closed and replaced at each value
	closed  chan struct{} // closed when the channel is
}

func record(ch <-chan election.Leader) *recorder {
	r := &recorder{changed: make(chan struct{}), closed: make(chan struct{})}
	go func() {
		defer close(r.closed)
		for l := range ch {
			r.mu.Lock()
			r.seq = append(r.seq, l)
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.seq))
	for i, l := range r.seq {
		out[i] = l.Name
	}
	return out
}

// waitLast waits until the last value received names leader name.
func (r *recorder) waitLast(t *testing.T, name, what string) {
	t.Helper()
	timeout := time.After(2 * patience)
	for {
		r.mu.Lock()
		last, ch := "-", r.changed
		if n := len(r.seq); n > 0 {
			last = r.seq[n-1].Name
		}
		r.mu.Unlock()
		if last == name {
			return
		}
		select {
		case <-ch:
		case <-r.closed:
			t.Fatalf("%s: channel closed; seen %v", what, r.names())
		case <-timeout:
			t.Fatalf("%s: last seen %q, want %q; seen %v", what, last, name, r.names())
		}
	}
}

// watchedBy reports whether session id watches p on some server (4lw wchp).
func watchedBy(t *testing.T, zkc *zktest.Cluster, p string, id int64) bool {
	t.Helper()
	for _, addr := range zkc.Addrs() {
		out, err := zktest.FourLetter(addr, "wchp")
		if err != nil {
			t.Fatalf("wchp %s: %v", addr, err)
		}
		var cur string
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "/"):
				cur = line
			case cur == p && strings.HasPrefix(strings.TrimSpace(line), "0x"):
				v, err := strconv.ParseUint(strings.TrimSpace(line)[2:], 16, 64)
				if err == nil && int64(v) == id {
					return true
				}
			}
		}
	}
	return false
}

// turns has two candidates take turns leading.
type turns struct {
	t    *testing.T
	es   [2]*election.Election
	cur  *election.Term
	who  int
	next <-chan campaigned
}

func newTurns(t *testing.T, x, y *election.Election) *turns {
	tu := &turns{t: t, es: [2]*election.Election{x, y}}
	tu.cur = campaign(t, x)
	tu.next = campaignAsync(testCtx(t), y)
	waitParticipants(t, x, 2)
	return tu
}

func (tu *turns) leader() string { return path.Base(tu.cur.Path()) }

// turn hands over to the other candidate, which queued behind, and queues
// the one that resigned again.
func (tu *turns) turn() string {
	t := tu.t
	t.Helper()
	resign(t, tu.cur)
	tu.cur = elected(t, tu.next, patience, "the next leader")
	tu.next = campaignAsync(testCtx(t), tu.es[tu.who])
	tu.who = 1 - tu.who
	waitParticipants(t, tu.es[0], 2)
	return tu.leader()
}

// stop ends both candidacies.
func (tu *turns) stop() {
	t := tu.t
	t.Helper()
	resign(t, tu.cur)
	resign(t, elected(t, tu.next, patience, "the last candidate"))
}

// An observer on a Client keeps streaming leaders across expiries of its
// own session: it sends no leader twice in a row (also when nothing
// changed while it reconnected), never goes back to an earlier leader,
// and once reconnected sees every leader an observer on an undisturbed
// Session sees.
func TestClientObserveAcrossExpiry(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	c := newClient(t, zkc.Addrs())
	octx, ocancel := context.WithCancel(testCtx(t))
	defer ocancel()
	onClient := record(election.NewElection(c, root).Observe(octx))
	indep := record(election.NewElection(zkc.Session(t), root).Observe(octx))
	onClient.waitLast(t, "", "the client observer's first value")
	indep.waitLast(t, "", "the independent observer's first value")

	x := election.NewElection(zkc.Session(t), root, election.WithValue([]byte("x")))
	y := election.NewElection(zkc.Session(t), root, election.WithValue([]byte("y")))
	tu := newTurns(t, x, y)
	first := tu.leader()
	indep.waitLast(t, first, "independent: first leader")
	onClient.waitLast(t, first, "client: first leader")
	changes := c.Subscribe(octx)

	// 1. An expiry while the leader stays: after reading the election
	// again on the new session (its watch on the leader's node is there),
	// the observer has sent nothing new.
	s1 := liveSession(t, c)
	zkc.Expire(t, s1)
	s2 := granted(t, changes, s1.ID(), 2*patience)
	zktest.WaitUntil(t, patience, "the client observer watches the leader from its new session", func() bool {
		return watchedBy(t, zkc, root+"/"+first, s2.New)
	})

	// 2. An expiry while the candidates take turns: the observer has no
	// session for part of it, then catches up with the current leader.
	s2s := liveSession(t, c)
	require.Equal(t, s2.New, s2s.ID())
	zkc.Expire(t, s2s)
	for i := 0; i < 3; i++ {
		indep.waitLast(t, tu.turn(), "independent: a turn during the expiry")
	}
	granted(t, changes, s2.New, 2*patience)
	caughtUp := tu.leader()
	onClient.waitLast(t, caughtUp, "client: the leader after reconnecting")

	// 3. After that, it sees every leader.
	for i := 0; i < 3; i++ {
		l := tu.turn()
		indep.waitLast(t, l, "independent: a turn after the reconnect")
		onClient.waitLast(t, l, "client: a turn after the reconnect")
	}
	ocancel()
	zktest.ClosedWithin(t, onClient.closed, patience, "the client observer's channel closes with its ctx")
	zktest.ClosedWithin(t, indep.closed, patience, "the independent observer's channel closes with its ctx")
	tu.stop()

	cs, is := onClient.names(), indep.names()
	t.Logf("client observer: %v", cs)
	t.Logf("independent observer: %v", is)
	onClient.mu.Lock()
	for i := 1; i < len(onClient.seq); i++ {
		p, q := onClient.seq[i-1], onClient.seq[i]
		require.False(t, p.Name == q.Name && string(p.Value) == string(q.Value), "sent twice in a row: %v", cs)
	}
	onClient.mu.Unlock()
	require.Equal(t, 1, strings.Count(strings.Join(cs, ","), first), "first leader sent once: %v", cs)
	// In order: what the client observer saw is a subsequence of what the
	// independent one saw.
	j := 0
	for _, n := range cs {
		for j < len(is) && is[j] != n {
			j++
		}
		require.Less(t, j, len(is), "client saw %q out of order or never held office: client %v, independent %v", n, cs, is)
		j++
	}
	// Complete after the reconnect.
	ci, ii := indexOf(cs, caughtUp), indexOf(is, caughtUp)
	require.GreaterOrEqual(t, ci, 0)
	require.GreaterOrEqual(t, ii, 0)
	require.Equal(t, is[ii:], cs[ci:], "every leader after the reconnect")
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// Leader on a Client reads on the new session after an expiry.
func TestClientLeaderAcrossExpiry(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	c := newClient(t, zkc.Addrs())
	e := election.NewElection(c, root)
	b := election.NewElection(zkc.Session(t), root, election.WithValue([]byte("b")))
	_, err := e.Leader(t.Context())
	require.ErrorIs(t, err, election.ErrNoLeader)
	tb := campaign(t, b)
	s1 := liveSession(t, c)
	zkc.Expire(t, s1)
	l, err := e.Leader(t.Context())
	require.NoError(t, err)
	require.Equal(t, tb.Token(), l.Token)
	s2 := liveSession(t, c)
	require.NotEqual(t, s1.ID(), s2.ID())
	resign(t, tb)
}

// Closing the Client while it has no session (partitioned, past its
// deadline, reconnecting) ends Observe and Run.
func TestClientClosedWithoutSession(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	p := zkc.Proxy(t)
	c := newClient(t, p.Addrs())
	e := election.NewElection(c, root, election.WithRequeue())
	ctx := testCtx(t)
	obs := record(e.Observe(ctx))
	obs.waitLast(t, "", "first value")
	terms := make(chan served, 4)
	ran := make(chan error, 1)
	go func() { ran <- e.Run(ctx, serveTerms(terms)) }()
	t1 := nextTerm(t, terms, "the first term")
	s1 := liveSession(t, c)

	p.Set(zktest.Blackhole)
	zktest.ClosedWithin(t, s1.Done(), s1.Timeout()+time.Second, "the session ends while partitioned")
	zktest.ClosedWithin(t, t1.ctx.Done(), patience, "the term ends with it")
	zktest.WaitUntil(t, patience, "the Client has no session", func() bool { return c.Current() == nil })
	require.NoError(t, c.Close())
	zktest.ClosedWithin(t, obs.closed, patience, "Observe's channel closes with the Client")
	select {
	case err := <-ran:
		require.True(t, errors.Is(err, recipes.ErrClientClosed), "Run: %v", err)
	case <-time.After(patience):
		t.Fatal("Run did not return when the Client was closed")
	}
	noTerm(t, terms, "after the Client closed")
}
