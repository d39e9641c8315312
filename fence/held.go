package fence

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Holder is a held lock or leadership whose fencing token a writer sends:
// *lock.Lease (mutex, read/write locks, semaphore permits, each member of a
// MultiLease through its Leases) and *election.Term have these methods.
// A member of a MultiLease is checked on its own: it stays held when
// another member is lost, so a writer that needs all of them checks the
// MultiLease's Err too.
//
// Err must return nil while the lock is held and, once it is not, an error
// saying why (for a lock.Lease one wrapping lock.ErrLost and the cause, such
// as recipes.ErrExpired or recipes.ErrDeadline, or lock.ErrReleased). It is
// called right before every token is sent, so it must be cheap and must not
// block.
type Holder interface {
	Token() recipes.Token
	Err() error
}

// ErrNotHeld is wrapped by the error of every lease-taking helper (Held,
// SetHeaderHeld, Transport, Memory.DoHeld, Postgres.InTxHeld,
// ZooKeeper.AcceptHeld) that refused to send a token because its holder is
// no longer held. The error also wraps the holder's Err, so
// errors.Is(err, lock.ErrLost) and errors.Is(err, recipes.ErrExpired) hold
// through it; errors.As gives the *NotHeldError.
var ErrNotHeld = errors.New("fence: lease no longer held")

// NotHeldError says that a token was not sent (a write was not made, a
// transaction was rolled back) because its holder had stopped holding: Cause
// is what the holder's Err returned. It wraps both ErrNotHeld and Cause.
type NotHeldError struct {
	Resource string        // the fenced resource, "" where the helper has none (SetHeaderHeld, Transport, Held)
	Token    recipes.Token // the holder's token, not sent
	Cause    error         // the holder's Err
}

func (e *NotHeldError) Error() string {
	if e.Resource == "" {
		return fmt.Sprintf("fence: token %s not sent: lease no longer held: %v", e.Token, e.Cause)
	}
	return fmt.Sprintf("fence: token %s for %q not sent: lease no longer held: %v", e.Token, e.Resource, e.Cause)
}

// Unwrap returns ErrNotHeld and the holder's error.
func (e *NotHeldError) Unwrap() []error { return []error{ErrNotHeld, e.Cause} }

// Held returns h's token if h is still held (its Err is nil), and otherwise
// a *NotHeldError wrapping ErrNotHeld and h's Err. Call it right before
// sending the token by any means the helpers of this package do not cover,
// and send nothing if it fails. A nil h is an error.
//
// A check that passed says the holder had not noticed a loss at that
// instant: a holder can still be paused between the check and the write
// reaching the resource, which is why the resource checks the token too.
// The check only keeps a holder that knows it lost its lock from writing.
func Held(h Holder) (recipes.Token, error) { return held("", h) }

func held(resource string, h Holder) (recipes.Token, error) {
	if h == nil || isNilPointer(h) {
		if resource == "" {
			return 0, errors.New("fence: nil Holder")
		}
		return 0, fmt.Errorf("fence: nil Holder for %q", resource)
	}
	tok := h.Token()
	if err := h.Err(); err != nil {
		return 0, &NotHeldError{Resource: resource, Token: tok, Cause: err}
	}
	return tok, nil
}

// isNilPointer reports whether h is a typed nil pointer (a nil *lock.Lease),
// whose methods would panic.
func isNilPointer(h Holder) bool {
	v := reflect.ValueOf(h)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
