package contend

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// EnsurePath creates full with data, and its missing ancestors, as
// container nodes (removed by the server once empty). An existing node is
// left as it is. An empty ancestor container may be reaped by the server
// between our creates (NoNode again): then it starts over, a few times.
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
	for try := 0; errors.Is(err, zk.ErrNoNode) && try < 5; try++ {
		err = nil
		for i := 1; i < len(full) && err == nil; i++ {
			if full[i] == '/' {
				err = mk(full[:i], nil)
			}
		}
		if err == nil {
			err = mk(full, data)
		}
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", full, err)
	}
	return nil
}
