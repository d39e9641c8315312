package barrier

import (
	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
)

// Option configures a Barrier or a DoubleBarrier.
type Option func(*options) error

type options struct {
	acl  []zk.ACL
	data []byte
}

// WithACL sets the ACL of the nodes the barrier creates: the gate, a
// participant's node, the round markers and missing parents (default: the
// session's).
func WithACL(acl []zk.ACL) Option {
	return func(o *options) (err error) {
		o.acl, err = core.CheckACL("barrier", acl)
		return err
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
