package lock

import (
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Option configures a Mutex.
type Option func(*options) error

type options struct {
	data   []byte
	acl    []zk.ACL
	policy *recipes.LossPolicy
	watch  bool

	revocable bool
	lockDelay time.Duration
	maxHold   time.Duration
	kazoo     bool
}

// WithData stores data (for example the holder's identity) on the
// contender node, where Contenders and operators can read it.
func WithData(data []byte) Option {
	return func(o *options) error {
		o.data = append([]byte(nil), data...)
		return nil
	}
}

// WithACL sets the ACL of the contender nodes (default: the session's).
func WithACL(acl []zk.ACL) Option {
	return func(o *options) (err error) {
		o.acl, err = core.CheckACL("lock", acl)
		return err
	}
}

// WithLossPolicy overrides the session's loss policy for this lock.
func WithLossPolicy(p recipes.LossPolicy) Option {
	return func(o *options) error {
		if p != recipes.LoseOnSuspend && p != recipes.LoseOnSessionEnd {
			return fmt.Errorf("lock: unknown loss policy %d", int(p))
		}
		o.policy = &p
		return nil
	}
}

// WithNodeWatch makes each lease watch its own node, so it is lost at once
// (with ErrNodeDeleted) when another client deletes the node, for example
// an operator breaking the lock, or when the ensemble ended the session
// while a follower goes on serving its connection (docs/ZOOKEEPER.md). It
// costs one more read per acquisition and
// one more watch notification per release; without it such a deletion is
// noticed only when a LoseOnSessionEnd lease re-validates after a reconnect
// (the next holder's larger token still fences the old one).
func WithNodeWatch() Option {
	return func(o *options) error {
		o.watch = true
		return nil
	}
}

// WithRevocable lets other clients ask a holder to give the lock up
// (Revoke): the lease watches its own node (as WithNodeWatch) and, when a
// revocation arrives, its Context is cancelled with a cause wrapping
// ErrRevoked while the lock stays held: the holder finishes what it must
// and calls Release. Err stays nil and Done open until then.
func WithRevocable() Option {
	return func(o *options) error {
		o.revocable = true
		return nil
	}
}

// WithMaxHold ends every lease of the lock d after its grant, even while
// its holder is alive and connected (Redis's PX, an etcd lease's TTL): its
// Context has that deadline (ctx.Deadline reports it, so database and HTTP
// calls made under it carry it), is cancelled at it with a cause wrapping
// both ErrLost and ErrMaxHold, and the lease's node is deleted at once, so
// the next waiter is granted. The next holder's token is larger, as always,
// so a resource that checks tokens rejects a late write of the expired
// holder. Err checks the time itself: a process resumed after the deadline
// sees the end on its first check. A lease whose session ends first ends
// with it, as without the option. On a MultiLock the deadline is counted
// from the moment every member is held, and all members end together. A
// zero d means no limit.
func WithMaxHold(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("lock: negative maximum hold time %v", d)
		}
		o.maxHold = d
		return nil
	}
}

// WithKazooNames names our contender nodes as kazoo does
// ("<guid>__lock__0000000042"; a reader's "<guid>__rlock__..."), for a lock
// path shared with kazoo clients that were not given
// extra_lock_patterns=["-lock-"] (kazoo ignores nodes it does not
// recognise). It costs Curator's compatibility: Curator orders contenders by
// the text after "lock-", which these names lack, so a Curator client must
// not share the path (see docs/INTEROP.md). It applies to Mutex (and
// MultiLock) and RWMutex; a Semaphore's permits are not kazoo's.
func WithKazooNames() Option {
	return func(o *options) error {
		o.kazoo = true
		return nil
	}
}

// WithLockDelay sets a lock-delay (as in Chubby and Consul): when the
// previous holder vanished without releasing (its process crashed or its
// session expired), the lock is granted again only d after a contender
// first found it gone, giving the dead holder's in-flight writes time to
// land. A clean Release hands over at once. TryAcquire returns ErrLocked
// while the delay runs and succeeds once it has passed.
//
// The delay runs from the first notice, on the server's clock (the mtime of
// the write recording it), and does not restart for later contenders. A
// waiter watching the holder notices within a round trip of the node's
// deletion; with nobody waiting, the server keeps no record of when the
// node went, so the delay runs from the next contender's arrival: never
// less than d after the holder vanished.
//
// "The server's clock" is the wall clock of the leader that applied each
// write: after a leader change it is another machine's, and a clock that
// runs ahead of the previous leader's, or is stepped forward, shortens the
// delay by as much (one that runs behind counts as no time passed). Keep
// the servers' clocks in sync (NTP); the delay is a mitigation, the fencing
// token is the guarantee.
//
// Holders record themselves in a persistent marker child, DelayNode, which
// survives the server's reaping of empty lock nodes; a clean Release
// deletes it in the same Multi as the holder's node. It applies to Mutex
// and to RWMutex writers, and every holder of the lock must use it: one
// more read and write per acquisition.
func WithLockDelay(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("lock: negative lock delay %v", d)
		}
		o.lockDelay = d
		return nil
	}
}
