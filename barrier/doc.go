// Package barrier implements ZooKeeper barriers for coordinated batch
// work.
//
// A Barrier is a gate: Set closes it (creates its node), Remove opens it
// (deletes the node), and Wait blocks while it is closed.
//
// A DoubleBarrier lets n participants start together (Enter returns once n
// have entered) and finish together (Leave returns once all have left). See
// DoubleBarrier for the protocol and what happens when a participant's
// session dies.
//
// Every wait re-reads ZooKeeper on each wake-up, selects on ctx and on the
// session's end, and returns every error it meets.
package barrier
