package election

import (
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Option configures an Election.
type Option func(*options) error

type options struct {
	value   []byte
	acl     []zk.ACL
	policy  *recipes.LossPolicy
	requeue bool
	kazoo   bool
}

// WithKazooNames names our candidate nodes as kazoo's Election does
// ("<guid>__lock__0000000007"), so kazoo candidates, which recognise only
// their own names, see ours. Curator's LeaderLatch and LeaderSelector must
// not then share the path (they order by the text after "latch-" or
// "lock-"); see docs/INTEROP.md.
func WithKazooNames() Option {
	return func(o *options) error {
		o.kazoo = true
		return nil
	}
}

// WithValue sets what this candidate advertises while it leads (its
// identity, an address): the data of its node, read by Leader and Observe.
func WithValue(v []byte) Option {
	return func(o *options) error {
		o.value = append([]byte(nil), v...)
		return nil
	}
}

// WithACL sets the ACL of candidate nodes (default: the session's).
func WithACL(acl []zk.ACL) Option {
	return func(o *options) (err error) {
		o.acl, err = core.CheckACL("election", acl)
		return err
	}
}

// WithLossPolicy overrides the session's loss policy for this election.
func WithLossPolicy(p recipes.LossPolicy) Option {
	return func(o *options) error {
		if p != recipes.LoseOnSuspend && p != recipes.LoseOnSessionEnd {
			return fmt.Errorf("election: unknown loss policy %d", int(p))
		}
		o.policy = &p
		return nil
	}
}

// WithRequeue makes Run campaign again after each term, until its ctx is
// done or the session is over (on a Client: until its ctx is done or the
// Client is closed, campaigning on each new session).
func WithRequeue() Option {
	return func(o *options) error {
		o.requeue = true
		return nil
	}
}
