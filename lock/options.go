package lock

import (
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Option configures a Mutex.
type Option func(*options) error

type options struct {
	data   []byte
	acl    []zk.ACL
	policy *recipes.LossPolicy
	watch  bool
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
	return func(o *options) error {
		if len(acl) == 0 {
			return fmt.Errorf("lock: empty ACL")
		}
		o.acl = acl
		return nil
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
// an operator breaking the lock. It costs one more read per acquisition and
// one more watch notification per release; without it such a deletion is
// noticed only when a LoseOnSessionEnd lease re-validates after a reconnect
// (the next holder's larger token still fences the old one).
func WithNodeWatch() Option {
	return func(o *options) error {
		o.watch = true
		return nil
	}
}
