package membership

import (
	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
)

// Option configures a Group.
type Option func(*options) error

type options struct {
	acl []zk.ACL
}

// WithACL sets the ACL of the member nodes and of the group's path when the
// group creates it (default: the session's).
func WithACL(acl []zk.ACL) Option {
	return func(o *options) (err error) {
		o.acl, err = core.CheckACL("membership", acl)
		return err
	}
}
