package contend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
)

// Info is a contender with what its node says about it.
type Info struct {
	Node
	Session int64 // EphemeralOwner
	Czxid   int64 // the fencing token
	Data    []byte
	Created time.Time // server time of creation
}

// Describe returns the contenders in queue order with their data and stat,
// read in parallel (go-zookeeper pipelines the reads on one connection).
// Nodes that vanish while being read are left out.
func (q *Queue) Describe(ctx context.Context) ([]Info, error) {
	list, err := q.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Info, len(list))
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, n := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = q.Info(ctx, n)
		}()
	}
	wg.Wait()
	kept := out[:0]
	for i, c := range out {
		switch {
		case errs[i] == nil:
			kept = append(kept, c)
		case errors.Is(errs[i], zk.ErrNoNode):
		default:
			return nil, q.wrap("describe", errs[i])
		}
	}
	return kept, nil
}

// Info reads one contender's node.
func (q *Queue) Info(ctx context.Context, n Node) (Info, error) {
	g, err := q.Sess.Get(ctx, q.Dir+"/"+n.Name)
	if err != nil {
		return Info{}, fmt.Errorf("read %s: %w", n.Name, err)
	}
	return infoOf(n, g.Data, g.Stat), nil
}

func infoOf(n Node, data []byte, st *zk.Stat) Info {
	return Info{
		Node: n, Session: st.EphemeralOwner, Czxid: st.Czxid,
		Data: data, Created: time.UnixMilli(st.Ctime),
	}
}

// InfoW reads one contender's node and leaves a data watch on it, which
// fires when the node is deleted or its data changes.
func (q *Queue) InfoW(ctx context.Context, n Node) (Info, <-chan zk.Event, error) {
	g, err := q.Sess.GetW(ctx, q.Dir+"/"+n.Name)
	if err != nil {
		return Info{}, nil, fmt.Errorf("read %s: %w", n.Name, err)
	}
	return infoOf(n, g.Value, g.Stat), g.Watch, nil
}

// Session returns the session of the hold's queue.
func (h *Hold) Session() core.Client { return h.q.Sess }
