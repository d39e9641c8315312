package lock

import (
	"errors"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/internal/obs"
)

var (
	// ErrLocked is returned by TryAcquire when another contender holds the
	// lock (or waits ahead of us). Our node is already deleted.
	ErrLocked = errors.New("lock: held by another contender")
	// ErrLost is wrapped by Lease.Err and the cause of Lease.Context when a
	// lease ends without Release: the session ended or was suspended, or the
	// node was deleted by someone else. errors.Is finds the cause too, for
	// example recipes.ErrExpired or recipes.ErrSuspended.
	ErrLost = errors.New("lock: lease lost")
	// ErrReleased is Lease.Err after Release.
	ErrReleased = errors.New("lock: lease released")
	// ErrNodeDeleted is the cause of a loss when the node was deleted; a
	// lease notices it at once WithNodeWatch, else when it re-validates after
	// a reconnect (recipes.LoseOnSessionEnd).
	ErrNodeDeleted = contend.ErrNodeDeleted
	// ErrMaxHold is wrapped, beside ErrLost, by Lease.Err and the cause of
	// Lease.Context when a lease reached its maximum hold time (WithMaxHold)
	// while its holder was still connected.
	ErrMaxHold = errors.New("lock: maximum hold time ran out")
)

func init() { obs.RegisterCause(ErrMaxHold, "max_hold") }
