package fence

import (
	"fmt"

	"github.com/go-zookeeper/zk"
)

// Option configures a ZooKeeper checker.
type Option func(*options) error

type options struct {
	acl []zk.ACL
}

func (o *options) apply(opts []Option) error {
	for _, opt := range opts {
		if opt == nil {
			return fmt.Errorf("fence: nil option")
		}
		if err := opt(o); err != nil {
			return err
		}
	}
	return nil
}

// WithACL sets the ACL of the nodes a ZooKeeper checker creates (default:
// the session's). Give writers of the guarded resource, and nobody else,
// the right to write them: whoever can set a token node can lower it.
func WithACL(acl []zk.ACL) Option {
	return func(o *options) error {
		if len(acl) == 0 {
			return fmt.Errorf("fence: empty ACL")
		}
		o.acl = acl
		return nil
	}
}
