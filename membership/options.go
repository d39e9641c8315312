package membership

import (
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Option configures a Group.
type Option func(*options) error

type options struct {
	acl []zk.ACL
}

func (o *options) apply(opts []Option) error {
	for _, opt := range opts {
		if opt == nil {
			return fmt.Errorf("membership: nil option")
		}
		if err := opt(o); err != nil {
			return err
		}
	}
	return nil
}

// aclOn returns the ACL of the nodes the group creates on sess.
func (o *options) aclOn(sess *recipes.Session) []zk.ACL {
	if o.acl != nil {
		return o.acl
	}
	return sess.ACL()
}

// WithACL sets the ACL of the member nodes and of the group's path when the
// group creates it (default: the session's).
func WithACL(acl []zk.ACL) Option {
	return func(o *options) error {
		if len(acl) == 0 {
			return fmt.Errorf("membership: empty ACL")
		}
		o.acl = acl
		return nil
	}
}
