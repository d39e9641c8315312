package barrier

import (
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Option configures a Barrier or a DoubleBarrier.
type Option func(*options) error

type options struct {
	acl  []zk.ACL
	data []byte
}

func (o *options) apply(opts []Option) error {
	for _, opt := range opts {
		if opt == nil {
			return fmt.Errorf("barrier: nil option")
		}
		if err := opt(o); err != nil {
			return err
		}
	}
	return nil
}

// aclOn returns the ACL of the nodes the barrier creates on sess.
func (o *options) aclOn(sess *recipes.Session) []zk.ACL {
	if o.acl != nil {
		return o.acl
	}
	return sess.ACL()
}

// WithACL sets the ACL of the nodes the barrier creates: the gate, a
// participant's node, the round markers and missing parents (default: the
// session's).
func WithACL(acl []zk.ACL) Option {
	return func(o *options) error {
		if len(acl) == 0 {
			return fmt.Errorf("barrier: empty ACL")
		}
		o.acl = acl
		return nil
	}
}

// WithData stores data (for example the participant's identity) on a
// DoubleBarrier participant's node. A Barrier ignores it.
func WithData(data []byte) Option {
	return func(o *options) error {
		o.data = append([]byte(nil), data...)
		return nil
	}
}
