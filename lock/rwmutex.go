package lock

import (
	"context"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Node kinds of a read-write lock, as in Curator's
// InterProcessReadWriteLock ("_c_<guid>-__READ__0000000042"), so Java and
// Go services can share one lock path.
const (
	ReadKind  = "__READ__"
	WriteKind = "__WRIT__"
)

var rwKinds = []string{ReadKind, WriteKind, KazooReadLock, KazooLock}

// RWMutex is a read-write lock on a ZooKeeper path: readers share it, a
// writer excludes everyone, and both queue in one FIFO order. A reader waits
// only for the nearest writer ahead of it; a writer waits for its immediate
// predecessor. It is a handle, safe for concurrent use.
//
// Tokens: a write lease's token is exclusive like a Mutex's. A read lease's
// token is shared with the other readers that hold at the same time, so it
// orders readers against writers (every writer granted after a reader has a
// larger token) but does not make a reader exclusive.
type RWMutex struct {
	*queue
}

// NewRWMutex returns a read-write lock at path (relative to the chroot) on
// src, a *recipes.Session or a *recipes.Client. Bad arguments are reported
// by its methods.
func NewRWMutex(src recipes.Source, path string, opts ...Option) *RWMutex {
	return &RWMutex{newQueue(src, path, rwKinds, opts)}
}

// AcquireRead blocks until a read lease is held, ctx is done or the session is
// over.
func (rw *RWMutex) AcquireRead(ctx context.Context) (*Lease, error) {
	return rw.acquire(ctx, ReadKind, readBlocker, false)
}

// TryAcquireRead takes a read lease if no writer holds or waits ahead, else
// returns ErrLocked at once, leaving no node behind.
func (rw *RWMutex) TryAcquireRead(ctx context.Context) (*Lease, error) {
	return rw.acquire(ctx, ReadKind, readBlocker, true)
}

// Acquire blocks until the write lease is held, ctx is done or the session is
// over.
func (rw *RWMutex) Acquire(ctx context.Context) (*Lease, error) {
	return rw.acquire(ctx, WriteKind, contend.Predecessor, false)
}

// TryAcquire takes the write lease if nobody holds or waits ahead, else
// returns ErrLocked at once, leaving no node behind.
func (rw *RWMutex) TryAcquire(ctx context.Context) (*Lease, error) {
	return rw.acquire(ctx, WriteKind, contend.Predecessor, true)
}

// readBlocker blocks a reader on the nearest writer ahead of it.
func readBlocker(n contend.Node) bool {
	return n.Kind == WriteKind || n.Kind == KazooLock
}
