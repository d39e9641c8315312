package election

import (
	"context"
	"errors"
	"fmt"
)

// Run campaigns, then runs fn while leading. fn's context is cancelled the
// moment leadership is in doubt or ctx is done, and carries the term
// (TermFromContext: its Token fences fn's writes); when fn returns, Run
// resigns. Without WithRequeue, Run returns fn's error (or the campaign's).
// With WithRequeue, Run campaigns again after each term (one that fn ended
// by returning nil, or that was lost), and returns only when ctx is done,
// the session is over, or fn returns an error while still leading.
//
// On a Client, a lost session does not end Run: fn's context is cancelled
// with the cause (ErrLost wrapping it), Run resigns, and with WithRequeue
// it campaigns again on the Client's next session, which it waits for; the
// new term has a new node and a larger token. Run then returns only when
// ctx is done (its cause), the Client is closed (recipes.ErrClientClosed),
// fn returns an error while still leading (that error), or the campaign
// fails for a reason another session would not cure (an ACL that denies
// us, say). An error fn returns after its term was lost counts as the loss,
// not as fn's choice.
func (e *Election) Run(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := e.check(ctx, "run"); err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("election: run %s: nil function", e.path)
	}
	for {
		term, err := e.Acquire(ctx)
		if err != nil {
			return err
		}
		lost, err := e.serve(ctx, term, fn)
		switch {
		case !e.opts.requeue:
			return err
		case err != nil && !lost:
			return err
		case ctx.Err() != nil:
			return context.Cause(ctx)
		}
	}
}

// serve runs fn for one term and resigns; lost reports whether the term was
// lost before fn returned.
func (e *Election) serve(ctx context.Context, term *Term, fn func(ctx context.Context) error) (lost bool, err error) {
	fctx, cancel := context.WithCancelCause(context.WithValue(ctx, termKey{}, term))
	stop := context.AfterFunc(term.Context(), func() { cancel(context.Cause(term.Context())) })
	defer stop()
	err = fn(fctx)
	cancel(context.Canceled)
	lost = errors.Is(term.Err(), ErrLost)
	if rerr := term.Release(context.WithoutCancel(ctx)); rerr != nil && err == nil {
		err = rerr
	}
	return lost, err
}

type termKey struct{}

// TermFromContext returns the term that Run is serving under ctx (fn's
// context or one derived from it), or nil outside Run.
func TermFromContext(ctx context.Context) *Term {
	if ctx == nil {
		return nil
	}
	t, _ := ctx.Value(termKey{}).(*Term)
	return t
}
