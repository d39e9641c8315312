package lock

import (
	"context"
	"errors"
	"fmt"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Kind is the name part of a mutex contender node, as in zk.Lock and
// Curator's InterProcessMutex: "_c_<guid>-lock-0000000042".
const Kind = "lock-"

var mutexKinds = []string{Kind}

// Mutex is an exclusive lock on a ZooKeeper path. It is a handle: every
// Acquire makes a new contender and returns its own Lease, so one Mutex may
// be shared by goroutines. It is safe for concurrent use.
type Mutex struct {
	sess *recipes.Session
	path string
	q    *contend.Queue
	opts options
	err  error // a construction error, returned by every call
}

// NewMutex returns a Mutex for the lock at path, which is relative to the
// session's chroot. Bad arguments (a nil session, an invalid path, a bad
// option) are reported by the Mutex's methods.
func NewMutex(sess *recipes.Session, path string, opts ...Option) *Mutex {
	m := &Mutex{sess: sess, path: path}
	m.err = m.init(opts)
	return m
}

func (m *Mutex) init(opts []Option) error {
	if m.sess == nil {
		return fmt.Errorf("lock: %w", recipes.ErrNilSession)
	}
	if err := recipes.ValidatePath(m.path); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&m.opts); err != nil {
			return err
		}
	}
	acl := m.opts.acl
	if acl == nil {
		acl = m.sess.ACL()
	}
	m.q = &contend.Queue{Sess: m.sess, Dir: m.sess.Path(m.path), Kinds: mutexKinds, ACL: acl}
	return nil
}

// Path returns the lock's path (relative to the session's chroot).
func (m *Mutex) Path() string { return m.path }

// Acquire blocks until the lock is held, ctx is done or the session is
// over, and returns the held Lease. On error no node of ours is left
// behind (see the package doc for cancellation).
func (m *Mutex) Acquire(ctx context.Context) (*Lease, error) {
	return m.acquire(ctx, false)
}

// TryAcquire takes the lock if no other contender holds it or waits ahead
// of us, and returns ErrLocked at once otherwise, leaving no node behind.
func (m *Mutex) TryAcquire(ctx context.Context) (*Lease, error) {
	return m.acquire(ctx, true)
}

func (m *Mutex) acquire(ctx context.Context, try bool) (*Lease, error) {
	if m.err != nil {
		return nil, m.err
	}
	if ctx == nil {
		return nil, fmt.Errorf("lock: acquire %s: nil context", m.path)
	}
	if err := m.sess.Err(); err != nil {
		return nil, fmt.Errorf("lock: acquire %s: %w", m.path, err)
	}
	e, list, err := m.q.Join(ctx, Kind, m.opts.data, false)
	if err != nil {
		return nil, fmt.Errorf("lock: acquire %s: %w", m.path, err)
	}
	if err := m.q.Wait(ctx, e, list, contend.Predecessor, try); err != nil {
		m.q.Discard(ctx, e.Path)
		if errors.Is(err, contend.ErrBlocked) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock: acquire %s: %w", m.path, err)
	}
	policy := m.sess.LossPolicy()
	if m.opts.policy != nil {
		policy = *m.opts.policy
	}
	return &Lease{
		h:    contend.NewHold(m.q, e, policy, ErrLost, ErrReleased),
		path: m.sess.Unpath(e.Path),
	}, nil
}
