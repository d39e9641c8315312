package contend

import (
	"context"
	"errors"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// EnsurePath creates full with data, and its missing ancestors, as
// container nodes (removed by the server once empty). An existing node is
// left as it is.
func (q *Queue) EnsurePath(ctx context.Context, full string, data []byte) error {
	mk := func(p string, data []byte) error {
		_, err := recipes.Call(ctx, q.Sess, func(c *zk.Conn) (string, error) {
			return c.CreateContainer(p, data, zk.FlagContainer, q.ACL)
		})
		if err == nil || errors.Is(err, zk.ErrNodeExists) {
			return nil
		}
		return err
	}
	err := mk(full, data)
	if errors.Is(err, zk.ErrNoNode) {
		for i := 1; i < len(full); i++ {
			if full[i] == '/' {
				if err := mk(full[:i], nil); err != nil {
					return q.wrap("create parents of", err)
				}
			}
		}
		err = mk(full, data)
	}
	if err != nil {
		return q.wrap("create", err)
	}
	return nil
}
