// Package election implements leader election on ZooKeeper with fencing
// tokens and session-expiry-driven failover.
//
// # Protocol
//
// Each candidate creates a protected ephemeral-sequential node
// "_c_<guid>-latch-NNNNNNNNNN" under the election path (a container node,
// created on demand). The candidate whose node is first leads; every other
// candidate watches only its immediate predecessor and re-checks the queue on
// every wake-up and every reconnect. Leadership is declared only once our
// node, owned by our session (its EphemeralOwner, checked at creation), is
// first: in a fresh list, or because the only node before it was deleted
// while ours was not (watch events arrive in zxid order). The
// names are those of Curator's LeaderLatch, so Java and Go candidates can
// share one election. A candidate's value (its identity, an address) is the
// data of its node.
//
// # Terms and fencing
//
// Campaign returns a Term. Its Token is the czxid of the candidate node: it
// grows with every term, so a resource that rejects tokens older than the
// largest it has seen rejects a deposed leader that does not know it yet.
//
// # Loss and failover
//
// A term ends, cancelling Term.Context with the cause, when the session is
// over (expiry, a replaced session, the local deadline, Close), when the
// node is deleted by someone else, and under the default policy
// (recipes.LoseOnSuspend) as soon as the connection is suspended. A leader
// partitioned from the ensemble steps down by its local deadline, before
// the server can expire its session and let the next candidate lead. A term
// never comes back: after a reconnect a candidate re-checks its node, and
// one whose node is gone joins the queue again with a new node (and a new
// token). Resign deletes our node, so the next candidate leads at once.
//
// # Cancellation
//
// Campaign blocks until we lead, ctx is done or the session is over; on
// error our node is deleted (in the background if the connection is down,
// until that succeeds or the session ends).
package election
