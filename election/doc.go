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
// Acquire returns a Term. Its Token is the czxid of the candidate node: it
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
// token). Release deletes our node, so the next candidate leads at once.
//
// # Sessions and Clients
//
// New takes a recipes.Source. With a *recipes.Session everything ends with
// that session: a Term, Run, the Observe channel. With a *recipes.Client,
// which replaces a lost session with a new one, the election follows the
// Client from one session to the next, but a term never does:
//
//   - A Term is bound to the session it was won on. Its Context is
//     cancelled, with ErrLost wrapping the cause, exactly as with a Session
//     (the session expired, the local deadline passed during a partition,
//     the connection was suspended under LoseOnSuspend, our node was
//     deleted). The next session owns none of our nodes: leading again
//     means campaigning again, behind whoever queued meanwhile, and the new
//     term has a new node and a larger token.
//   - Acquire waits for a live session and, if the session ends while we
//     wait in the queue, joins again on the next one.
//   - Run with WithRequeue keeps campaigning across sessions: fn's context
//     (the term's) is cancelled with the cause, Run resigns and joins the
//     queue again on the next session. It returns only when its ctx is done,
//     the Client is closed (recipes.ErrClientClosed), fn returns an error
//     while still leading, or the campaign fails for a reason a new session
//     would not cure. An error fn returns after its term was lost (often
//     context.Cause of its ctx) is the loss, not fn's choice: Run goes on.
//   - Observe, Leader and Participants read on the current session; on a
//     new one they first sync its server with the ensemble leader, so a
//     reader never goes back to an older state. The Observe channel stays
//     open across sessions (no leader is sent twice in a row; leaders that
//     came and went while it had no session coalesce) and closes when its
//     ctx is done or the Client is closed.
//
// # Cancellation
//
// Acquire blocks until we lead, ctx is done or the session is over; on
// error our node is deleted (in the background if the connection is down,
// until that succeeds or the session ends).
package election
