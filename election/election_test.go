package election_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// fence is the protected resource: it accepts a write only with a token at
// least as large as the largest it has accepted, and records each term's
// activity.
type fence struct {
	mu       sync.Mutex
	highest  election.Token
	accepted int
	rejected []string
}

func (f *fence) write(who string, tok election.Token) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if tok < f.highest {
		f.rejected = append(f.rejected, fmt.Sprintf("%s: %v < %v", who, tok, f.highest))
		return fmt.Errorf("stale token %v < %v", tok, f.highest)
	}
	f.highest = tok
	f.accepted++
	return nil
}

type activity struct {
	who        string
	token      election.Token
	start, end time.Time
}

func TestSingleLeaderManyTerms(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	const (
		candidates = 6
		terms      = 30
		writes     = 3
	)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()

	var (
		f        fence
		mu       sync.Mutex
		log      []activity
		active   atomic.Int32
		overlaps atomic.Int32
		started  atomic.Int32
	)
	serve := func(who string) func(context.Context) error {
		return func(ctx context.Context) error {
			term := election.TermFromContext(ctx)
			if term == nil {
				return errors.New("no term in Run's context")
			}
			if started.Add(1) > terms {
				cancel() // enough: stop every candidate
				return nil
			}
			if active.Add(1) != 1 {
				overlaps.Add(1)
			}
			a := activity{who: who, token: term.Token(), start: time.Now()}
			for i := 0; i < writes; i++ {
				if err := ctx.Err(); err != nil { // fenced writes happen only while we lead
					break
				}
				if err := f.write(who, term.Token()); err != nil {
					break
				}
			}
			a.end = time.Now()
			active.Add(-1)
			mu.Lock()
			log = append(log, a)
			mu.Unlock()
			return nil // hand over
		}
	}

	errs := make(chan error, candidates)
	for i := 0; i < candidates; i++ {
		sess := zkc.Session(t)
		e := election.NewElection(sess, root, election.WithRequeue(), election.WithValue([]byte(fmt.Sprint(i))))
		go func() { errs <- e.Run(ctx, serve(fmt.Sprintf("c%d", i))) }()
	}
	for i := 0; i < candidates; i++ {
		select {
		case err := <-errs:
			require.ErrorIs(t, err, context.Canceled, "Run ends with its ctx")
		case <-time.After(time.Minute):
			t.Fatal("Run did not return after ctx was cancelled")
		}
	}

	require.Zero(t, overlaps.Load(), "two terms were active at once")
	require.Empty(t, f.rejected, "stale tokens were presented")
	require.Len(t, log, terms)
	require.Equal(t, terms*writes, f.accepted, "every leader wrote while its term lasted")
	slices.SortFunc(log, func(a, b activity) int { return a.start.Compare(b.start) })
	leaders := map[string]int{}
	for i, a := range log {
		leaders[a.who]++
		if i == 0 {
			continue
		}
		prev := log[i-1]
		assert.False(t, a.start.Before(prev.end), "term %d (%s) started before term %d (%s) ended", i, a.who, i-1, prev.who)
		assert.Greater(t, a.token, prev.token, "term %d token %v not above term %d token %v", i, a.token, i-1, prev.token)
	}
	assert.Len(t, leaders, candidates, "every candidate led at some point: %v", leaders)

	// Everyone left: the election is empty.
	e := election.NewElection(zkc.Session(t), root)
	zktest.WaitUntil(t, patience, "the election is empty", func() bool {
		_, err := e.Leader(t.Context())
		return errors.Is(err, election.ErrNoLeader)
	})
}

func TestResignHandsOverAtOnce(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	a := election.NewElection(zkc.Session(t), root)
	b := election.NewElection(zkc.Session(t), root)

	ta := campaign(t, a)
	bc := campaignAsync(testCtx(t), b)
	waitParticipants(t, a, 2)
	notYet(t, bc, "b while a leads")

	start := time.Now()
	resign(t, ta)
	tb := elected(t, bc, time.Second, "b after a resigned")
	t.Logf("handover took %v", time.Since(start))
	require.Greater(t, tb.Token(), ta.Token())
	require.ErrorIs(t, ta.Err(), election.ErrReleased)
	require.True(t, isClosed(ta.Done()))
	require.ErrorIs(t, context.Cause(ta.Context()), election.ErrReleased)
	require.NoError(t, ta.Release(t.Context()), "Release is idempotent")
	require.NoError(t, tb.Err())
	resign(t, tb)
}

func TestObserve(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	obsSess := zkc.Session(t)
	observer := election.NewElection(obsSess, root)
	octx, ocancel := context.WithCancel(testCtx(t))
	defer ocancel()
	ch := observer.Observe(octx)

	first := recvLeader(t, ch, "empty election")
	require.Empty(t, first.Name, "no leader yet: zero Leader")

	names := []string{"a", "b", "c"}
	var es []*election.Election
	for _, n := range names {
		es = append(es, election.NewElection(zkc.Session(t), root, election.WithValue([]byte(n))))
	}
	ta := campaign(t, es[0])
	got := recvLeader(t, ch, "a leads")
	require.Equal(t, "a", string(got.Value))
	require.Equal(t, ta.Token(), got.Token)

	// Late observers start with the current leader.
	late := observer.Observe(octx)
	require.Equal(t, "a", string(recvLeader(t, late, "late observer").Value))

	pending := []<-chan campaigned{nil, campaignAsync(testCtx(t), es[1])}
	waitParticipants(t, observer, 2)
	pending = append(pending, campaignAsync(testCtx(t), es[2]))
	waitParticipants(t, observer, 3)

	require.NoError(t, ta.Proclaim(t.Context(), []byte("a2")))
	got = recvLeader(t, ch, "a proclaims")
	require.Equal(t, "a2", string(got.Value))
	require.Equal(t, ta.Token(), got.Token)
	require.Equal(t, "a2", string(recvLeader(t, late, "late observer sees proclaim").Value))

	term := ta
	for i := 1; i < len(names); i++ {
		resign(t, term)
		term = elected(t, pending[i], patience, names[i])
		got = recvLeader(t, ch, names[i]+" leads")
		require.Equal(t, names[i], string(got.Value))
		require.Equal(t, term.Token(), got.Token)
		require.Equal(t, names[i], string(recvLeader(t, late, "late observer").Value))
	}
	resign(t, term)
	got = recvLeader(t, ch, "nobody leads")
	require.Empty(t, got.Name)

	ocancel()
	for _, c := range []<-chan election.Leader{ch, late} {
		select {
		case l, ok := <-c:
			require.False(t, ok, "value after cancel: %+v", l)
		case <-time.After(patience):
			t.Fatal("observe channel not closed after ctx was cancelled")
		}
	}
	require.NoError(t, obsSess.Err())
}

func TestObserveEndsWithSession(t *testing.T) {
	zkc := ensemble(t)
	sess := zkc.Session(t)
	ch := election.NewElection(sess, zktest.Root(t)).Observe(testCtx(t))
	require.Empty(t, recvLeader(t, ch, "empty").Name)
	require.NoError(t, sess.Close())
	select {
	case _, ok := <-ch:
		require.False(t, ok)
	case <-time.After(patience):
		t.Fatal("observe channel not closed after the session ended")
	}
}

func TestRunRequeues(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	const rounds = 6

	a := election.NewElection(zkc.Session(t), root, election.WithRequeue())
	b := election.NewElection(zkc.Session(t), root, election.WithRequeue())
	led := make(chan string, 2*rounds)
	var n atomic.Int32
	serve := func(who string) func(context.Context) error {
		return func(ctx context.Context) error {
			if n.Add(1) > rounds {
				cancel()
				return nil
			}
			led <- who
			// Each term lasts until the other candidate waits behind it
			// (it re-queues only after its own term has ended).
			for deadline := time.Now().Add(patience); ; {
				ps, err := a.Participants(ctx)
				switch {
				case err == nil && len(ps) == 2:
					return nil
				case ctx.Err() != nil:
					return ctx.Err()
				case time.Now().After(deadline):
					return errors.New("the other candidate did not queue")
				}
				time.Sleep(10 * time.Millisecond) // polling server state
			}
		}
	}
	errs := make(chan error, 2)
	go func() { errs <- a.Run(ctx, serve("a")) }()
	waitParticipants(t, a, 1)
	go func() { errs <- b.Run(ctx, serve("b")) }()
	for i := 0; i < 2; i++ {
		select {
		case err := <-errs:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(patience):
			t.Fatal("Run did not end with its ctx")
		}
	}
	close(led)
	var seq []string
	for w := range led {
		seq = append(seq, w)
	}
	require.Equal(t, []string{"a", "b", "a", "b", "a", "b"}, seq, "each term goes to the other candidate")
}

func TestRunWithoutRequeue(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	e := election.NewElection(zkc.Session(t), root)
	boom := errors.New("boom")
	var tok election.Token
	err := e.Run(testCtx(t), func(ctx context.Context) error {
		tok = election.TermFromContext(ctx).Token()
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.NotZero(t, tok)
	require.NoError(t, e.Run(testCtx(t), func(ctx context.Context) error { return nil }))
	_, err = e.Leader(t.Context())
	require.ErrorIs(t, err, election.ErrNoLeader, "Run resigned")
	require.Nil(t, election.TermFromContext(t.Context()))
}

func TestLeaderAndParticipants(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	obs := election.NewElection(zkc.Session(t), root)
	_, err := obs.Leader(t.Context())
	require.ErrorIs(t, err, election.ErrNoLeader)
	ps, err := obs.Participants(t.Context())
	require.NoError(t, err)
	require.Empty(t, ps)

	var sessions []*recipes.Session
	var es []*election.Election
	for _, n := range []string{"a", "b", "c"} {
		s := zkc.Session(t)
		sessions = append(sessions, s)
		es = append(es, election.NewElection(s, root, election.WithValue([]byte(n))))
	}
	ta := campaign(t, es[0])
	bc := campaignAsync(testCtx(t), es[1])
	waitParticipants(t, obs, 2)
	cc := campaignAsync(testCtx(t), es[2])
	ps = waitParticipants(t, obs, 3)

	l, err := obs.Leader(t.Context())
	require.NoError(t, err)
	require.Equal(t, "a", string(l.Value))
	require.Equal(t, ta.Token(), l.Token)
	require.Equal(t, sessions[0].ID(), l.Session)
	require.Equal(t, root+"/"+l.Name, ta.Path())
	require.WithinDuration(t, time.Now(), l.Created, time.Minute)

	for i, want := range []string{"a", "b", "c"} {
		require.Equal(t, want, string(ps[i].Value), "participant %d", i)
		require.Equal(t, sessions[i].ID(), ps[i].Session)
		if i > 0 {
			require.Greater(t, ps[i].Token, ps[i-1].Token)
		}
	}
	require.Equal(t, l, ps[0])

	notYet(t, bc, "b")
	notYet(t, cc, "c")
	resign(t, ta)
	tb := elected(t, bc, patience, "b")
	// obs reads on its own session, whose server may not have applied a's
	// delete yet (ZooKeeper reads are not linearizable across sessions).
	ps = waitParticipants(t, obs, 2)
	require.Equal(t, tb.Token(), ps[0].Token)
	require.Equal(t, "c", string(ps[1].Value))
	resign(t, tb)
	resign(t, elected(t, cc, patience, "c"))
}

func TestProclaimAfterTermEnds(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	e := election.NewElection(zkc.Session(t), root, election.WithValue([]byte("v1")))
	term := campaign(t, e)
	require.NoError(t, term.Proclaim(t.Context(), []byte("v2")))
	l, err := e.Leader(t.Context())
	require.NoError(t, err)
	require.Equal(t, "v2", string(l.Value))
	require.NoError(t, term.Err(), "a proclaim does not end the term")
	resign(t, term)
	err = term.Proclaim(t.Context(), []byte("v3"))
	require.ErrorIs(t, err, election.ErrNotLeader)
	require.ErrorIs(t, err, election.ErrReleased)

	// Lost by expiry.
	sess := zkc.Session(t)
	term = campaign(t, election.NewElection(sess, root))
	zkc.Expire(t, sess)
	zktest.ClosedWithin(t, term.Done(), patience, "term ends on expiry")
	err = term.Proclaim(t.Context(), []byte("v4"))
	require.ErrorIs(t, err, election.ErrNotLeader)
	require.ErrorIs(t, err, election.ErrLost)
}

func TestNodeDeletedByOthers(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	raw := zkc.Conn(t)
	a := election.NewElection(zkc.Session(t), root)
	b := election.NewElection(zkc.Session(t), root)

	// A waiting candidate whose node is deleted joins again with a new node.
	ta := campaign(t, a)
	bc := campaignAsync(testCtx(t), b)
	ps := waitParticipants(t, a, 2)
	old := ps[1]
	require.NoError(t, raw.Delete(root+"/"+old.Name, -1))
	resign(t, ta)
	tb := elected(t, bc, patience, "b after its node was deleted")
	require.NoError(t, tb.Err())
	require.NotEqual(t, root+"/"+old.Name, tb.Path(), "b leads with a new node")
	require.Greater(t, tb.Token(), old.Token)
	l, err := a.Leader(t.Context())
	require.NoError(t, err)
	require.Equal(t, tb.Token(), l.Token)
	select {
	case <-tb.Done():
		t.Fatalf("b's new term ended: %v", tb.Err())
	default:
	}

	// A leader whose node is deleted loses its term.
	require.NoError(t, raw.Delete(tb.Path(), -1))
	zktest.ClosedWithin(t, tb.Done(), patience, "term ends when its node is deleted")
	require.ErrorIs(t, tb.Err(), election.ErrLost)
	require.ErrorIs(t, context.Cause(tb.Context()), election.ErrLost)
	require.ErrorIs(t, tb.Proclaim(t.Context(), nil), election.ErrNotLeader)
	require.NoError(t, tb.Release(t.Context()), "Release is fine after a loss")

	// The session lives on and can campaign again.
	tb2 := campaign(t, b)
	require.Greater(t, tb2.Token(), tb.Token())
	resign(t, tb2)
}

func TestCuratorLeaderLatchCompatible(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	raw := zkc.Conn(t)
	zktest.Mkdirs(t, raw, root)

	// What Curator's LeaderLatch creates: a protected ephemeral-sequential
	// node "_c_<uuid>-latch-" whose data is the participant id.
	const uuid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
	curator, err := raw.Create(root+"/_c_"+uuid+"-latch-", []byte("java-1"), zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	_, cst, err := raw.Exists(curator)
	require.NoError(t, err)
	// A foreign node that is no candidate must be ignored.
	_, err = raw.Create(root+"/not-a-candidate", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)

	e := election.NewElection(zkc.Session(t), root, election.WithValue([]byte("go-1")))
	l, err := e.Leader(t.Context())
	require.NoError(t, err)
	require.Equal(t, "java-1", string(l.Value))
	require.Equal(t, election.Token(cst.Czxid), l.Token)

	ec := campaignAsync(testCtx(t), e)
	ps := waitParticipants(t, e, 2)
	require.Equal(t, "java-1", string(ps[0].Value))
	require.Equal(t, "go-1", string(ps[1].Value))
	select {
	case r := <-ec:
		t.Fatalf("our candidate led in front of Curator's: %v %v", r.term, r.err)
	case <-time.After(300 * time.Millisecond): // it must keep waiting
	}

	require.NoError(t, raw.Delete(curator, -1))
	term := elected(t, ec, 2*time.Second, "after Curator's node left")
	require.Greater(t, term.Token(), election.Token(cst.Czxid))
	l, err = e.Leader(t.Context())
	require.NoError(t, err)
	require.Equal(t, "go-1", string(l.Value))
	resign(t, term)
}

func TestBadInput(t *testing.T) {
	zkc := ensemble(t)
	sess := zkc.Session(t)
	ctx := t.Context()
	noop := func(context.Context) error { return nil }

	check := func(t *testing.T, e *election.Election, want error) {
		t.Helper()
		_, err := e.Acquire(ctx)
		require.ErrorIs(t, err, want)
		_, err = e.Leader(ctx)
		require.ErrorIs(t, err, want)
		_, err = e.Participants(ctx)
		require.ErrorIs(t, err, want)
		require.ErrorIs(t, e.Run(ctx, noop), want)
		_, ok := <-e.Observe(ctx)
		require.False(t, ok, "Observe of a bad election is closed")
	}
	t.Run("nil session", func(t *testing.T) {
		check(t, election.NewElection(nil, "/a"), recipes.ErrNilSession)
	})
	for _, p := range []string{"", "a", "/", "/a/", "//a", "/a/../b", "/a\x00"} {
		t.Run(fmt.Sprintf("path %q", p), func(t *testing.T) {
			check(t, election.NewElection(sess, p), recipes.ErrInvalidPath)
		})
	}
	t.Run("bad options", func(t *testing.T) {
		for _, o := range []election.Option{election.WithACL(nil), election.WithLossPolicy(7)} {
			e := election.NewElection(sess, zktest.Root(t), o)
			_, err := e.Acquire(ctx)
			require.Error(t, err)
			require.ErrorContains(t, e.Run(ctx, noop), "election:")
		}
		e := election.NewElection(sess, zktest.Root(t), nil) // a nil option is ignored
		_, err := e.Leader(ctx)
		require.ErrorIs(t, err, election.ErrNoLeader)
	})
	t.Run("nil ctx and fn", func(t *testing.T) {
		root := zktest.Root(t)
		e := election.NewElection(sess, root)
		var nilCtx context.Context
		_, err := e.Acquire(nilCtx)
		require.ErrorContains(t, err, "nil context")
		_, err = e.Leader(nilCtx)
		require.ErrorContains(t, err, "nil context")
		_, err = e.Participants(nilCtx)
		require.ErrorContains(t, err, "nil context")
		require.ErrorContains(t, e.Run(nilCtx, noop), "nil context")
		_, ok := <-e.Observe(nilCtx)
		require.False(t, ok)
		require.ErrorContains(t, e.Run(ctx, nil), "nil function")
		require.Nil(t, election.TermFromContext(nilCtx))

		term := campaign(t, e)
		require.ErrorContains(t, term.Proclaim(nilCtx, nil), "nil context")
		require.ErrorContains(t, term.Release(nilCtx), "nil context")
		require.NoError(t, term.Err(), "bad calls leave the term alone")
		resign(t, term)
	})
	t.Run("values", func(t *testing.T) {
		v := []byte("mine")
		e := election.NewElection(sess, zktest.Root(t), election.WithValue(v))
		v[0] = 'X' // WithValue copies
		term := campaign(t, e)
		l, err := e.Leader(ctx)
		require.NoError(t, err)
		require.True(t, bytes.Equal([]byte("mine"), l.Value))
		resign(t, term)
	})
}

func TestCampaignCancelled(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	a := election.NewElection(zkc.Session(t), root)
	b := election.NewElection(zkc.Session(t), root)
	ta := campaign(t, a)
	ctx, cancel := context.WithCancel(testCtx(t))
	bc := campaignAsync(ctx, b)
	waitParticipants(t, a, 2)
	cancel()
	select {
	case r := <-bc:
		require.ErrorIs(t, r.err, context.Canceled)
		require.Nil(t, r.term)
	case <-time.After(patience):
		t.Fatal("Acquire ignored its ctx")
	}
	ps, err := a.Participants(t.Context())
	require.NoError(t, err)
	require.Len(t, ps, 1, "the cancelled candidate's node is gone")
	require.Equal(t, ta.Token(), ps[0].Token)
	resign(t, ta)
}
