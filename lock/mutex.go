package lock

import (
	"context"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Kind is the name part of a mutex contender node, as in zk.Lock and
// Curator's InterProcessMutex: "_c_<guid>-lock-0000000042".
const Kind = "lock-"

// The name parts of kazoo's contender nodes ("<uuid>__lock__0000000042"):
// kazoo's Lock and WriteLock (and Election) create KazooLock nodes, its
// ReadLock KazooReadLock nodes. Every lock recipe counts them as
// contenders, ordered with its own by their sequence number: a KazooLock
// node is exclusive (a writer), a KazooReadLock node a reader.
const (
	KazooLock     = core.KazooLock
	KazooReadLock = core.KazooReadLock
)

// A mutex is blocked by every contender ahead of it, ours or foreign.
var mutexKinds = []string{Kind, KazooLock, KazooReadLock}

// Mutex is an exclusive lock on a ZooKeeper path. It is a handle: every
// Acquire makes a new contender and returns its own Lease, so one Mutex may
// be shared by goroutines. It is safe for concurrent use.
type Mutex struct {
	*queue
}

// NewMutex returns a Mutex for the lock at path, which is relative to the
// session's chroot, on src: a *recipes.Session, or a *recipes.Client (see
// the package doc). Bad arguments (a nil source, an invalid path, a bad
// option) are reported by the Mutex's methods.
func NewMutex(src recipes.Source, path string, opts ...Option) *Mutex {
	return &Mutex{newQueue(src, path, mutexKinds, opts)}
}

// Acquire blocks until the lock is held, ctx is done or the session is
// over (on a Client: until the lock is held or ctx is done, queueing again
// on each new session), and returns the held Lease. On error no node of
// ours is left behind (see the package doc for cancellation).
func (m *Mutex) Acquire(ctx context.Context) (*Lease, error) {
	return m.acquire(ctx, Kind, contend.Predecessor, false)
}

// TryAcquire takes the lock if no other contender holds it or waits ahead
// of us, and returns ErrLocked at once otherwise, leaving no node behind.
func (m *Mutex) TryAcquire(ctx context.Context) (*Lease, error) {
	return m.acquire(ctx, Kind, contend.Predecessor, true)
}
