package fence

import (
	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
)

// Option configures a ZooKeeper checker.
type Option func(*options) error

type options struct {
	acl []zk.ACL
}

// WithACL sets the ACL of the nodes a ZooKeeper checker creates (default:
// the session's). Give writers of the guarded resource, and nobody else,
// the right to write them: whoever can set a token node can lower it.
func WithACL(acl []zk.ACL) Option {
	return func(o *options) (err error) {
		o.acl, err = core.CheckACL("fence", acl)
		return err
	}
}
