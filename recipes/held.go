package recipes

import "context"

// Held is what a recipe hands out while its holder has something: a
// lock.Lease, a lock.MultiLease, an election.Term, a membership.Membership.
// Every one is acquired with Acquire (or TryAcquire) and given back with
// Release, and follows the same rules:
//
//   - Context is cancelled, with the reason as its cause, the moment the
//     holder must stop acting: lost (the session ended, the node was
//     deleted, a policy's doubt) or Release began. Run the guarded work
//     under it.
//   - Done is closed when it is over.
//   - Err is nil while held; then why not (the recipe's ErrReleased, or an
//     error wrapping its ErrLost or ErrGone and the cause). It checks the
//     session's local deadline itself, so it is current even in a process
//     that was paused.
//   - Release is idempotent and safe after a loss; it retries across
//     disconnects until its ctx is done, then finishes in the background.
//
// One exception: a membership.Membership on a Client outlives sessions by
// design; while it joins again its node is briefly absent and its Context
// stays live (its Token changes with each new node). Use a lock or a term
// when acting must stop at once.
type Held interface {
	Context() context.Context
	Done() <-chan struct{}
	Err() error
	Release(ctx context.Context) error
}

// Fenced is a Held with one fencing token: the czxid of its node. Writers
// send it with every write; the resource rejects a token smaller than one
// it has seen (see package fence). A lock.MultiLease is not Fenced: it holds
// one token per lock (its Leases are Fenced), and no single number orders
// it against the holders of each of its locks.
type Fenced interface {
	Held
	Token() Token
}
