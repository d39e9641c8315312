// Package barrier implements ZooKeeper barriers for coordinated batch
// work.
//
// A Barrier is a gate: Set closes it (creates its node), Remove opens it
// (deletes the node), and Wait blocks while it is closed.
//
// A DoubleBarrier lets n participants start together (Enter returns once n
// have entered) and finish together (Leave returns once all have left).
// Successive rounds may reuse one path, and they are independent:
//
//   - each participant is an ephemeral sequential node under the path;
//   - a round opens when one Multi checks that its n member nodes all exist
//     and creates its marker, "ready-<seq>-<guid>" (after the round's lowest
//     member), which lists the members: the marker's name belongs to that
//     round alone;
//   - a marker none of whose members still has a node is stale: its round
//     is over for good, and whoever sees that (the round's last leaver, or
//     the next entrant when every participant died) deletes it, without
//     ever touching another round's marker;
//   - Leave waits only for the members its round's marker lists, so a slow
//     leaver neither waits for nor disturbs the next round.
//
// A participant whose session dies counts as having left: before the round
// opens the others' Enter returns ErrBroken, after it opened Leave does not
// wait for it. An entrant beyond the first n, or one that arrives while an
// opened round still has members, gets ErrFull. See DoubleBarrier for the
// details.
//
// Every wait re-reads ZooKeeper on each wake-up, selects on ctx and on the
// session's end, and returns every error it meets.
package barrier
