package lock

import (
	"context"
	"fmt"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Contender is one node in a lock's queue, as operators see it.
type Contender struct {
	Name    string    // child name, e.g. "_c_<guid>-lock-0000000042"
	Kind    string    // Kind, ReadKind, WriteKind or LeaseKind
	Seq     int64     // position key: the sequence suffix
	Session int64     // owning session (EphemeralOwner)
	Token   Token     // czxid: the token this contender holds or will hold
	Data    []byte    // what the contender stored (WithData)
	Created time.Time // server time of creation
}

// Contenders returns the lock's queue in order: for a Mutex the first is
// the holder (if its session still lives) and the others wait in turn. Nodes
// that vanish while being read are left out. On a Client it reads through
// the current session, waiting while there is none.
func (b *queue) Contenders(ctx context.Context) ([]Contender, error) {
	if err := core.Check(ctx, b.err, "lock", "contenders of", b.path); err != nil {
		return nil, err
	}
	sess, err := live(ctx, b.src)
	if err != nil {
		return nil, fmt.Errorf("lock: contenders of %s: %w", b.path, err)
	}
	q, err := b.on(sess)
	if err != nil {
		return nil, err
	}
	return b.contendersOn(ctx, q)
}

// contendersOn reads the queue q (on one session).
func (b *queue) contendersOn(ctx context.Context, q *contend.Queue) ([]Contender, error) {
	infos, err := q.Describe(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock: contenders of %s: %w", b.path, err)
	}
	out := make([]Contender, len(infos))
	for i, in := range infos {
		out[i] = Contender{
			Name: in.Name, Kind: in.Kind, Seq: in.Seq, Session: in.Session,
			Token: recipes.Token(in.Czxid), Data: in.Data, Created: in.Created,
		}
	}
	return out, nil
}
