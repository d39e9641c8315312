package contend

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// EnsurePath creates full with data, and its missing ancestors, as
// container nodes (removed by the server once empty). An existing node is
// left as it is. An empty ancestor container may be reaped by the server
// between our creates (NoNode again): then it starts over, a few times.
func (q *Queue) EnsurePath(ctx context.Context, full string, data []byte) error {
	err := q.Sess.CreatePath(ctx, full, data, zk.FlagContainer, zk.FlagContainer, q.ACL, nil)
	if err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("create %s: %w", full, err)
	}
	return nil
}
