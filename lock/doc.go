// Package lock implements ZooKeeper locks with fencing tokens: Mutex,
// RWMutex, Semaphore and MultiLock, with revocation, lock-delay and writes
// guarded by a held lease.
//
// # Recipes and what their tokens mean
//
//   - Mutex: exclusive. At most one live lease per lock path; its token is
//     exclusive: every later holder has a larger one.
//   - RWMutex: readers share, a writer excludes everyone, FIFO between them
//     (a reader waits only for the nearest writer ahead, a writer for its
//     immediate predecessor). Names are Curator's ("__READ__", "__WRIT__").
//     A writer's token is exclusive; a reader's token is shared with the
//     readers holding at the same time (every writer granted later has a
//     larger token, so it still orders readers against writers).
//   - Semaphore: at most n holders (Curator's InterProcessSemaphoreV2
//     design: an internal mutex so only one waiter watches the holders; the
//     permit count stored on the semaphore node and checked). A permit's
//     token grows with every grant but is shared with up to n-1 holders.
//   - MultiLock: several Mutexes all or nothing, acquired in a global order
//     (no deadlock between overlapping sets), with one token per member.
//
// Lease.Guard applies ZooKeeper writes in one Multi that first checks our
// node still exists, so they commit only while the lease is held. Revoke
// asks holders acquired WithRevocable to release (and can break the lock
// after a grace period); WithLockDelay delays the next grant after a holder
// vanished without releasing; WithMaxHold ends every lease a fixed time
// after its grant even while its holder is connected (ErrMaxHold). Package
// fence checks tokens at the resource.
//
// # Session or Client
//
// Every constructor takes a recipes.Source. On a *recipes.Session the lock
// lives and dies with that session: once it is over, every call fails. On a
// *recipes.Client the handle outlives sessions: each Acquire (and each Try
// form, and Contenders) first waits for the Client's live session, bounded
// by ctx, and a blocking Acquire whose session ends while it waits queues
// again on the next one. A Lease never moves: it stays bound to the session
// it was granted on and is lost when that session ends; the next Acquire is
// a new grant with a new, larger token.
//
// # Protocol
//
// A contender creates a protected ephemeral-sequential znode
// "_c_<guid>-lock-NNNNNNNNNN" under the lock path (created on demand as a
// container node, which the server removes once empty). Contenders are
// ordered by the sequence suffix. A contender holds the lock when its node
// is first; otherwise it watches only its immediate predecessor (with GetW,
// so a vanished node leaves no watch behind) and re-checks on every wake-up
// and every reconnect: there is no herd effect. The lock is held only once
// our node is first and its EphemeralOwner is our session.
//
// The names are those of go-zookeeper's zk.Lock and Curator's
// InterProcessMutex, so Go, Java and zk.Lock clients can share a lock path.
// Children that are not contenders (other names, other recipes) are ignored.
//
// # Fencing
//
// A Lease's Token is the czxid of its node. Tokens grow with every grant,
// across leader changes and restarts, so a resource that remembers the
// largest token it accepted can reject a holder that lost the lock but does
// not know it yet (a paused process, a partitioned client). Mutex tokens are
// exclusive: at most one live lease holds a given lock path.
//
// # Loss
//
// A lease is lost when its session is over (expiry, a replaced session, the
// local deadline, Close), and under the default policy
// (recipes.LoseOnSuspend) as soon as the connection is suspended. Then
// Lease.Context is cancelled with the cause, Done closes and Err wraps
// ErrLost; the node is deleted in the background if the session lives on.
// Under recipes.LoseOnSessionEnd a lease survives a short disconnect: on
// reconnect it re-validates its node and keeps its token, or is lost with
// ErrNodeDeleted if someone else deleted the node meanwhile.
//
// By default a held lease does not watch its own node (every contender
// keeps exactly one watch, on the node that blocks it), so a node deleted by
// hand while the connection stays up ends nothing locally: the next
// contender takes the lock with a larger token, which is what fences the old
// holder. With WithNodeWatch the lease watches its node too and is lost at
// once, with ErrNodeDeleted, when it is deleted.
//
// # Cancellation
//
// Acquire blocks until the lock is held, ctx is done or the session is over.
// When it returns an error, no node of ours is left behind: a node whose
// create was in flight is awaited, or found by its guid, and deleted before
// Acquire returns. This waits at most about the session timeout (a lost
// reply is noticed when the connection fails); what cannot be done by then
// goes on in the background until it succeeds or the session ends.
package lock
