package election_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// succession runs e.Acquire(ctx) in a goroutine and reports, together
// with the new term, whether old's context was already cancelled at the
// moment Acquire returned.
type succeeded struct {
	campaigned
	oldOver bool
}

func succeedAsync(ctx context.Context, e *election.Election, old *election.Term) <-chan succeeded {
	ch := make(chan succeeded, 1)
	go func() {
		term, err := e.Acquire(ctx)
		over := old.Context().Err() != nil
		ch <- succeeded{campaigned{term, err, time.Now()}, over}
	}()
	return ch
}

func successor(t *testing.T, ch <-chan succeeded, d time.Duration, what string) succeeded {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: Acquire: %v", what, r.err)
		}
		return r
	case <-time.After(d):
		t.Fatalf("%s: Acquire did not return within %v", what, d)
		return succeeded{}
	}
}

func TestLeaderExpiry(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	s1 := zkc.Session(t)
	a := election.NewElection(s1, root, election.WithValue([]byte("a")))
	b := election.NewElection(zkc.Session(t), root, election.WithValue([]byte("b")))

	ta := campaign(t, a)
	bc := succeedAsync(testCtx(t), b, ta)
	waitParticipants(t, b, 2)

	var aEnded atomic.Int64
	context.AfterFunc(ta.Context(), func() { aEnded.Store(time.Now().UnixNano()) })

	zkc.Expire(t, s1)
	r := successor(t, bc, patience, "b after a's session expired")
	// The server deletes a's node and drops a's connection in one step, and
	// tells b and a over different connections: no client can make sure a
	// hears first (that is what the token is for). a must hear at once.
	zktest.ClosedWithin(t, ta.Done(), time.Second, "a's term ends with its session")
	zktest.WaitUntil(t, time.Second, "a's term's AfterFunc ran", func() bool { return aEnded.Load() != 0 })
	t.Logf("a's term ended %v after b's Acquire returned (negative: before)",
		time.Unix(0, aEnded.Load()).Sub(r.at))
	cause := context.Cause(ta.Context())
	require.ErrorIs(t, cause, election.ErrLost)
	// The cause is the session (suspended or expired) or, when the deletion
	// of a's node reaches a first, that deletion.
	require.True(t, isRecipesErr(cause) || strings.Contains(cause.Error(), "deleted"), "cause %v", cause)
	require.ErrorIs(t, ta.Err(), election.ErrLost)
	require.Greater(t, r.term.Token(), ta.Token())

	zktest.ClosedWithin(t, s1.Done(), patience, "a's session is over")
	require.ErrorIs(t, s1.Err(), recipes.ErrExpired)
	_, err := a.Acquire(t.Context())
	require.True(t, recipes.IsLoss(err), "campaign on an expired session: %v", err)

	l, err := b.Leader(t.Context())
	require.NoError(t, err)
	require.Equal(t, "b", string(l.Value))
	resign(t, r.term)
}

func TestLeaderPartitioned(t *testing.T) {
	for name, policy := range map[string]recipes.LossPolicy{
		"LoseOnSuspend":    recipes.LoseOnSuspend,    // steps down when the connection goes silent
		"LoseOnSessionEnd": recipes.LoseOnSessionEnd, // steps down by the local deadline
	} {
		t.Run(name, func(t *testing.T) { testLeaderPartitioned(t, policy) })
	}
}

func testLeaderPartitioned(t *testing.T, policy recipes.LossPolicy) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	p := zkc.Proxy(t)
	s1 := p.Session(t)
	a := election.NewElection(s1, root, election.WithValue([]byte("a")), election.WithRequeue(), election.WithLossPolicy(policy))
	b := election.NewElection(zkc.Session(t), root, election.WithValue([]byte("b")))

	terms := make(chan *election.Term, 1)
	ran := make(chan error, 1)
	runCtx := testCtx(t)
	go func() {
		ran <- a.Run(runCtx, func(ctx context.Context) error {
			select {
			case terms <- election.TermFromContext(ctx):
			default:
				return errors.New("a led twice")
			}
			<-ctx.Done()
			return context.Cause(ctx)
		})
	}()
	var ta *election.Term
	select {
	case ta = <-terms:
	case <-time.After(patience):
		t.Fatal("a did not lead")
	}
	bc := succeedAsync(testCtx(t), b, ta)
	waitParticipants(t, b, 2)

	start := time.Now()
	p.Set(zktest.Blackhole)
	bound := s1.Timeout() + time.Second
	zktest.ClosedWithin(t, ta.Done(), bound, "a steps down while partitioned")
	t.Logf("a's term ended %v after the partition began: %v", time.Since(start), ta.Err())
	require.Equal(t, zktest.Blackhole, p.Mode(), "still partitioned")
	require.ErrorIs(t, ta.Err(), election.ErrLost)

	r := successor(t, bc, patience, "b after a was partitioned")
	t.Logf("b leads %v after the partition began", r.at.Sub(start))
	require.True(t, r.oldOver, "b led while a still believed it led")
	require.Greater(t, r.term.Token(), ta.Token())
	require.Equal(t, zktest.Blackhole, p.Mode(), "still partitioned")

	p.Set(zktest.Pass)
	select {
	case err := <-ran:
		require.True(t, recipes.IsLoss(err), "Run after the session was lost: %v", err)
	case <-time.After(patience):
		t.Fatal("a's Run went on after its session was lost")
	}
	require.ErrorIs(t, ta.Err(), election.ErrLost)
	require.Error(t, s1.Err())
	l, err := b.Leader(t.Context())
	require.NoError(t, err)
	require.Equal(t, "b", string(l.Value))
	require.Equal(t, r.term.Token(), l.Token)
	require.NoError(t, r.term.Err())
	resign(t, r.term)
}

func TestDisconnectEndsTermByDefault(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	p := zkc.Proxy(t)
	s1 := p.Session(t)
	a := election.NewElection(s1, root)
	b := election.NewElection(zkc.Session(t), root)
	ta := campaign(t, a)
	bc := succeedAsync(testCtx(t), b, ta)
	waitParticipants(t, b, 2)

	p.Set(zktest.Reset)
	zktest.ClosedWithin(t, ta.Done(), patience, "a's term ends on disconnect")
	require.ErrorIs(t, ta.Err(), recipes.ErrSuspended)
	p.Set(zktest.Pass)
	// a's node is deleted once it reconnects, so b leads long before a's
	// session could expire; a's session lives on.
	r := successor(t, bc, patience, "b after a's disconnect")
	require.True(t, r.oldOver)
	require.NoError(t, s1.Err())
	resign(t, r.term)
}

func TestLoseOnSessionEndSurvivesDisconnect(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	p := zkc.Proxy(t)
	s1 := p.Session(t, recipes.WithSessionTimeout(4*time.Second))
	a := election.NewElection(s1, root, election.WithLossPolicy(recipes.LoseOnSessionEnd))
	ta := campaign(t, a)
	events := s1.Subscribe(testCtx(t))

	p.Set(zktest.Reset)
	waitFor(t, events, recipes.StateSuspended)
	p.Set(zktest.Pass)
	waitFor(t, events, recipes.StateReconnected)
	require.NoError(t, ta.Err(), "term survives a short disconnect")
	require.NoError(t, ta.Proclaim(t.Context(), []byte("still here")))
	l, err := a.Leader(t.Context())
	require.NoError(t, err)
	require.Equal(t, ta.Token(), l.Token)
	resign(t, ta)
}

func waitFor(t *testing.T, events <-chan recipes.StateEvent, st recipes.State) {
	t.Helper()
	timeout := time.After(patience)
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "events ended while waiting for %v", st)
			if ev.State == st {
				return
			}
		case <-timeout:
			t.Fatalf("no %v within %v", st, patience)
		}
	}
}

func TestLeaderServerKilled(t *testing.T) {
	zkc := zktest.StartCluster(t, zktest.Config{Servers: 3})
	root := zktest.Root(t)
	// a talks only to the ensemble leader, which we kill: a cannot
	// reconnect anywhere, and the ensemble elects a new leader (new epoch).
	srv := zkc.WaitLeader(t)
	s1, err := recipes.Connect(testCtx(t), []string{zkc.Addrs()[srv]}, recipes.WithSessionTimeout(zktest.DefaultSessionTimeout))
	require.NoError(t, err)
	t.Cleanup(func() { s1.Close() })
	a := election.NewElection(s1, root, election.WithValue([]byte("a")))
	b := election.NewElection(zkc.Session(t), root, election.WithValue([]byte("b")))
	c := election.NewElection(zkc.Session(t), root, election.WithValue([]byte("c")))

	ta := campaign(t, a)
	bc := succeedAsync(testCtx(t), b, ta)
	waitParticipants(t, b, 2)
	cc := campaignAsync(testCtx(t), c)
	waitParticipants(t, b, 3)

	start := time.Now()
	zkc.Kill(t, srv)
	zktest.ClosedWithin(t, ta.Done(), s1.Timeout()+time.Second, "a's term ends when its server dies")
	require.ErrorIs(t, ta.Err(), election.ErrLost)

	r := successor(t, bc, 30*time.Second, "b after a's server was killed")
	t.Logf("failover took %v; tokens %#v -> %#v", r.at.Sub(start), ta.Token(), r.term.Token())
	require.True(t, r.oldOver)
	require.Greater(t, r.term.Token(), ta.Token())
	require.GreaterOrEqual(t, r.term.Token().Epoch(), ta.Token().Epoch())
	zktest.ClosedWithin(t, s1.Done(), patience, "a's session is over")

	notYet(t, cc, "c while b leads")
	resign(t, r.term)
	tc := elected(t, cc, patience, "c after b resigned")
	require.Greater(t, tc.Token(), r.term.Token())

	// A candidate that joins now gets a token of the new epoch.
	d := election.NewElection(zkc.Session(t), root)
	dc := campaignAsync(testCtx(t), d)
	waitParticipants(t, d, 2)
	resign(t, tc)
	td := elected(t, dc, patience, "d after c resigned")
	t.Logf("token after failover: %#v", td.Token())
	require.Greater(t, td.Token(), tc.Token())
	require.Greater(t, td.Token().Epoch(), ta.Token().Epoch(), "the ensemble leader changed")
	resign(t, td)
}
