package fence

import (
	"context"
	"errors"
	"fmt"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Checker is the check a fenced resource runs on every write.
//
// Implementations keep, per resource, the highest token accepted so far
// (0 before the first). They are safe for concurrent use, and their
// operations on one resource are linearizable: each Accept takes effect at
// one instant between its call and its return.
type Checker interface {
	// Accept admits a write to resource by the holder of tok. Atomically, it
	// compares tok with the highest token accepted for resource so far and
	//
	//   - if tok >= highest, records tok as the new highest and returns nil
	//     (an equal token is accepted: one holder writes many times);
	//   - if tok < highest, changes nothing and returns a *StaleError, which
	//     wraps ErrStale and carries both tokens.
	//
	// Any other error (invalid arguments aside: ErrInvalidToken, an empty
	// resource) means the outcome is unknown: tok may or may not have been
	// recorded. Recording it is always safe (tokens only grow), so such a
	// call may simply be retried.
	Accept(ctx context.Context, resource string, tok recipes.Token) error

	// Highest returns the highest token accepted for resource so far, or 0
	// if none was.
	Highest(ctx context.Context, resource string) (recipes.Token, error)
}

// ErrStale is wrapped by every error that rejects a write because its token
// is older than one already accepted for the resource. Test with
// errors.Is(err, fence.ErrStale); errors.As gives the *StaleError.
var ErrStale = errors.New("fence: stale fencing token")

// ErrInvalidToken is wrapped by the error Accept returns for a token that no
// lock could have granted (zero or negative). Nothing is recorded.
var ErrInvalidToken = errors.New("fence: invalid fencing token")

// StaleError says that a write to Resource with Token was rejected because
// Highest, a larger token, was accepted for it before. The holder of Token
// has lost its lock (or its lease expired) and must stop writing.
type StaleError struct {
	Resource string
	Token    recipes.Token // the rejected token
	Highest  recipes.Token // the highest token accepted so far, > Token
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("fence: stale fencing token for %q: token %s is older than the highest accepted %s",
		e.Resource, e.Token, e.Highest)
}

// Unwrap returns ErrStale.
func (e *StaleError) Unwrap() error { return ErrStale }

func stale(resource string, tok, highest recipes.Token) error {
	return &StaleError{Resource: resource, Token: tok, Highest: highest}
}

// checkArgs validates the arguments shared by every checker.
func checkArgs(resource string, tok recipes.Token) error {
	if resource == "" {
		return errors.New("fence: empty resource name")
	}
	if tok <= 0 {
		return fmt.Errorf("%w %d for %q: tokens are positive", ErrInvalidToken, int64(tok), resource)
	}
	return nil
}
