package election_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// TestMain runs the tests, stops zktest's shared servers, and only then
// looks for leaked goroutines (zktest.Main would os.Exit before goleak).
func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Wrap(m)) }

// patience bounds every wait for something that should happen promptly.
const patience = 10 * time.Second

// testCtx is cancelled when the test ends or after a minute.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// ensemble returns the package's shared 3-node ensemble, for tests that do
// not disturb the servers.
func ensemble(t *testing.T) *zktest.Cluster {
	return zktest.Shared(t, zktest.Config{Servers: 3})
}

type campaigned struct {
	term *election.Term
	err  error
	at   time.Time
}

// campaignAsync runs e.Acquire(ctx) in a goroutine and delivers its result.
func campaignAsync(ctx context.Context, e *election.Election) <-chan campaigned {
	ch := make(chan campaigned, 1)
	go func() {
		term, err := e.Acquire(ctx)
		ch <- campaigned{term, err, time.Now()}
	}()
	return ch
}

// elected waits for a campaignAsync result and requires a term.
func elected(t *testing.T, ch <-chan campaigned, d time.Duration, what string) *election.Term {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: Acquire: %v", what, r.err)
		}
		return r.term
	case <-time.After(d):
		t.Fatalf("%s: Acquire did not return within %v", what, d)
		return nil
	}
}

// notYet fails the test if the campaignAsync result is already there.
func notYet(t *testing.T, ch <-chan campaigned, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s: Acquire returned early: term %v, err %v", what, r.term != nil, r.err)
	default:
	}
}

// campaign runs Acquire and requires a term at once.
func campaign(t *testing.T, e *election.Election) *election.Term {
	t.Helper()
	return elected(t, campaignAsync(testCtx(t), e), patience, e.Path())
}

// resign resigns term with a bounded context.
func resign(t *testing.T, term *election.Term) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := term.Release(ctx); err != nil {
		t.Fatalf("resign %s: %v", term.Path(), err)
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitParticipants waits until the election has n candidates and returns
// them.
func waitParticipants(t *testing.T, e *election.Election, n int) []election.Leader {
	t.Helper()
	var ps []election.Leader
	zktest.WaitUntil(t, patience, "the election has candidates", func() bool {
		var err error
		ps, err = e.Participants(t.Context())
		if err != nil {
			t.Fatalf("participants: %v", err)
		}
		return len(ps) == n
	})
	return ps
}

// recvLeader waits for the next value of an Observe channel.
func recvLeader(t *testing.T, ch <-chan election.Leader, what string) election.Leader {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatalf("%s: observe channel closed", what)
		}
		return l
	case <-time.After(patience):
		t.Fatalf("%s: nothing observed within %v", what, patience)
		return election.Leader{}
	}
}

// isRecipesErr reports whether err wraps one of the recipes package's
// session errors.
func isRecipesErr(err error) bool {
	return recipes.IsLoss(err) || errors.Is(err, recipes.ErrSuspended)
}
