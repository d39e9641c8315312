package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Contender is one node in a lock's queue, as operators see it.
type Contender struct {
	Name    string    // child name, e.g. "_c_<guid>-lock-0000000042"
	Seq     int64     // position key: the sequence suffix
	Session int64     // owning session (EphemeralOwner)
	Token   Token     // czxid: the token this contender holds or will hold
	Data    []byte    // what the contender stored (WithData)
	Created time.Time // server time of creation
}

// Contenders returns the lock's queue in order: the first is the holder
// (if its session still lives), the others wait in turn. Nodes that vanish
// while being read are left out.
func (m *Mutex) Contenders(ctx context.Context) ([]Contender, error) {
	if m.err != nil {
		return nil, m.err
	}
	if ctx == nil {
		return nil, fmt.Errorf("lock: contenders of %s: nil context", m.path)
	}
	list, err := m.q.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock: contenders: %w", err)
	}
	out := make([]Contender, len(list))
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, n := range list {
		wg.Add(1)
		go func() { // go-zookeeper pipelines these on one connection
			defer wg.Done()
			type got struct {
				data []byte
				stat *zk.Stat
			}
			g, err := recipes.Call(ctx, m.sess, func(c *zk.Conn) (got, error) {
				d, st, err := c.Get(m.q.Dir + "/" + n.Name)
				return got{d, st}, err
			})
			if err != nil {
				errs[i] = err
				return
			}
			out[i] = Contender{
				Name: n.Name, Seq: n.Seq, Session: g.stat.EphemeralOwner,
				Token: Token(g.stat.Czxid), Data: g.data,
				Created: time.UnixMilli(g.stat.Ctime),
			}
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
			return nil, fmt.Errorf("lock: contenders of %s: %w", m.path, errs[i])
		}
	}
	return kept, nil
}
