package lock

import (
	"context"
	"fmt"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Token is a fencing token (see recipes.Token).
type Token = recipes.Token

// Lease is a held lock. Its methods are safe for concurrent use.
type Lease struct {
	h    *contend.Hold
	path string
}

// Token returns the fencing token: the czxid of our contender node. Later
// holders of the same lock get larger tokens.
func (l *Lease) Token() Token { return Token(l.h.Entry().Stat.Czxid) }

// Path returns the path of our contender node (relative to the chroot).
func (l *Lease) Path() string { return l.path }

// Context returns a context that is cancelled when the lease is lost or
// released; context.Cause says why (an error wrapping ErrLost, or
// ErrReleased). Run the work the lock protects under it.
func (l *Lease) Context() context.Context { return l.h.Context() }

// Done is closed when the lease is over: lost, or released and the node
// known to be gone.
func (l *Lease) Done() <-chan struct{} { return l.h.Done() }

// Err returns nil while the lease is held; then ErrReleased, or an error
// wrapping ErrLost and the cause.
func (l *Lease) Err() error { return l.h.Err() }

// Release gives the lock up: it cancels Context at once, then deletes our
// node, retrying across disconnects until ctx is done. It is idempotent and
// safe after a loss. If ctx ends first it returns ctx's cause and the delete
// goes on in the background until it succeeds or the session ends; Done
// closes only once the node is known to be gone. A nil ctx is an error and
// releases nothing.
func (l *Lease) Release(ctx context.Context) error {
	if ctx == nil {
		return fmt.Errorf("lock: release %s: nil context", l.path)
	}
	return l.h.Release(ctx)
}

// limit ends the lease d after its grant (WithMaxHold); 0: no limit.
func (l *Lease) limit(d time.Duration) {
	if d > 0 {
		l.h.Limit(time.Now().Add(d), ErrMaxHold)
	}
}

var (
	_ recipes.Fenced = (*Lease)(nil)
	_ recipes.Held   = (*MultiLease)(nil)
)
