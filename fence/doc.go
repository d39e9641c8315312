// Package fence checks fencing tokens at the resource a lock protects, so
// that the writes of a holder that lost its lock are rejected.
//
// # Why
//
// A ZooKeeper lock cannot stop a holder that has lost it without knowing:
// a process paused (GC, swap, a stopped VM) or cut off from ZooKeeper past
// its session timeout still believes it holds the lock while the next
// holder already writes. Every grant therefore carries a fencing token
// (recipes.Token, from lock.Lease.Token and the election's leadership):
// the czxid of the holder's node, which grows with every grant. The
// resource, not the lock, must enforce it.
//
// # Protocol
//
//  1. The holder acquires the lock and takes its token.
//  2. It sends the token with every write (in Go calls; over HTTP in the
//     Fencing-Token Header, see SetHeader; in SQL as a parameter).
//  3. For each write the resource calls Checker.Accept(resource, token),
//     which atomically compares it with the highest token accepted for the
//     resource so far: an older token is rejected with an error wrapping
//     ErrStale (a *StaleError naming both tokens) and the write is dropped;
//     an equal or newer token is recorded as the highest and the write goes
//     ahead. Equal tokens are accepted because one holder writes many times.
//  4. A holder whose write is rejected has lost the lock: it must stop,
//     and acquire the lock again to go on (with a new, larger token).
//
// Once a newer holder has had one write accepted, no older holder's write
// is accepted any more for that resource. Resources are independent: each
// has its own highest token. Use the lock's path (or any name the writers
// agree on) as the resource.
//
// For full safety the check and the write must be one atomic step, or a
// stale write admitted an instant before a newer one could still land after
// it. Memory.Do (in-process state) and Postgres.InTx (data in the same
// PostgreSQL database) make them atomic; ZooKeeper, and Accept alone,
// admit writes in token order but leave the write itself to the caller.
//
// # Checkers
//
//   - Memory keeps the tokens in process memory: for a service guarding its
//     own state; Do runs the write under the check.
//   - ZooKeeper keeps them in znodes (compare-and-set on the node version).
//   - Postgres keeps them in a table, one fenced upsert statement per
//     accept; InTx runs the application's own writes in the same
//     transaction, committed only if the token is accepted.
//
// Middleware fences HTTP handlers with any Checker: stale tokens get 409
// Conflict, missing ones 428 Precondition Required.
//
// # Sending the lease, not the token
//
// A holder that knows it has lost its lock must not send its token at all:
// until a newer holder has written, the resource still accepts it. So the
// helpers that send a token have forms that take the lease instead (any
// Holder: *lock.Lease, *election.Term) and check that it is still held
// right before the token leaves: Held (for any other transport),
// SetHeaderHeld and Transport (HTTP; Transport checks at every round trip),
// Memory.DoHeld, Postgres.InTxHeld (again before the commit) and
// ZooKeeper.AcceptHeld. For a lease lost, released or resigned they send
// nothing (the transaction is rolled back) and return a *NotHeldError
// wrapping ErrNotHeld and the lease's Err, so errors.Is(err, lock.ErrLost)
// and errors.Is(err, recipes.ErrExpired) see why. A nil lease is an error.
// The check does not replace the resource's: a holder paused right after a
// check that passed is still stopped only by the token.
//
// # Guarding your own SQL
//
// With Postgres.InTx the token check and the application's UPDATE commit
// together:
//
//	err := pg.InTx(ctx, nil, "accounts/42", "worker-7", lease.Token(), func(tx *sql.Tx) error {
//		_, err := tx.ExecContext(ctx, `UPDATE accounts SET balance = $1 WHERE id = $2`, balance, 42)
//		return err
//	})
//	if errors.Is(err, fence.ErrStale) {
//		// we lost the lock: stop
//	}
//
// The same in one statement, without a helper: the fenced upsert runs as a
// data-modifying CTE and the UPDATE applies only if it accepted the token
// (it returns a row). Both run in the statement's transaction, so the row
// lock on the locks row is held until the UPDATE commits. Zero rows updated
// means a stale token (or no account 42):
//
//	WITH fence AS (
//	    INSERT INTO locks AS l (resource, owner_id, fencing_token) VALUES ($3, $4, $5)
//	    ON CONFLICT (resource) DO UPDATE
//	       SET fencing_token = EXCLUDED.fencing_token, owner_id = EXCLUDED.owner_id, updated_at = now()
//	     WHERE l.fencing_token <= EXCLUDED.fencing_token
//	    RETURNING 1)
//	UPDATE accounts SET balance = $1 WHERE id = $2 AND EXISTS (SELECT FROM fence)
package fence
