package election

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// Leader describes a candidate: the leader, or one in the queue.
type Leader struct {
	Name    string // candidate node name
	Value   []byte // what it advertises (WithValue, Proclaim)
	Token   Token  // czxid of its node: its term's fencing token
	Session int64  // owning ZooKeeper session
	Created time.Time
}

func leaderOf(i contend.Info) Leader {
	return Leader{Name: i.Name, Value: i.Data, Token: i.Token, Session: i.Session, Created: i.Created}
}

// Leader returns the current leader, or ErrNoLeader.
func (e *Election) Leader(ctx context.Context) (Leader, error) {
	if err := e.check(ctx, "leader"); err != nil {
		return Leader{}, err
	}
	for {
		list, err := e.q.List(ctx)
		if err != nil {
			return Leader{}, fmt.Errorf("election: leader of %s: %w", e.path, err)
		}
		if len(list) == 0 {
			return Leader{}, ErrNoLeader
		}
		info, err := e.q.Info(ctx, list[0])
		if errors.Is(err, zk.ErrNoNode) {
			continue // it just left: look again
		}
		if err != nil {
			return Leader{}, fmt.Errorf("election: leader of %s: %w", e.path, err)
		}
		return leaderOf(info), nil
	}
}

// Participants returns every candidate in queue order: the leader first.
func (e *Election) Participants(ctx context.Context) ([]Leader, error) {
	if err := e.check(ctx, "participants"); err != nil {
		return nil, err
	}
	infos, err := e.q.Describe(ctx)
	if err != nil {
		return nil, fmt.Errorf("election: participants of %s: %w", e.path, err)
	}
	out := make([]Leader, len(infos))
	for i, in := range infos {
		out[i] = leaderOf(in)
	}
	return out, nil
}

// Observe returns a channel of leadership changes, for candidates and for
// observers that never campaign. The first value is the leader at the time
// of the call (a zero Leader, with an empty Name, when there is none); then
// a value is sent whenever the leader, or its advertised value, changes.
//
// Coalescing: after each send the observer reads the election afresh, so a
// reader that keeps receiving sees every leader that held office across a
// read round trip; changes that happen while the reader is not receiving,
// or within one round trip, coalesce into the latest state. The same leader
// is never sent twice in a row with the same value.
//
// The observer watches only the leader's node (or, with no leader, the
// election's children), so observers add no herd to the candidates. The
// channel is closed when ctx is done or the session is over.
func (e *Election) Observe(ctx context.Context) <-chan Leader {
	out := make(chan Leader)
	if e.check(ctx, "observe") != nil || !e.sess.Go(func() { e.observe(ctx, out) }) {
		close(out)
	}
	return out
}

func (e *Election) observe(ctx context.Context, out chan<- Leader) {
	defer close(out)
	var last *Leader
	for {
		_, changed := e.sess.Changed() // before reading: a change during the read is not missed
		var (
			cur   Leader
			watch <-chan zk.Event
		)
		err := recipes.Retry(ctx, e.sess, func(ctx context.Context) error {
			for {
				var err error
				var again bool
				cur, watch, again, err = e.current(ctx)
				if !again || err != nil {
					return err
				}
			}
		})
		if err != nil {
			if ctx.Err() == nil && e.sess.Err() == nil {
				e.sess.Logger().Warn("election observer stopped", "path", e.path, "err", err)
			}
			return
		}
		if last == nil || last.Name != cur.Name || string(last.Value) != string(cur.Value) {
			select {
			case out <- cur:
				last = &cur
			case <-ctx.Done():
				return
			case <-e.sess.Done():
				return
			}
			continue // read afresh before waiting: changes may have happened meanwhile
		}
		select {
		case <-watch:
		case <-changed:
		case <-ctx.Done():
			return
		case <-e.sess.Done():
			return
		}
	}
}

// current reads the leader and leaves a watch that fires when it changes:
// on the leader's node, or on the election's children when it is empty.
// again says that the election changed between two of its reads (a
// candidate joined, or the election was created): read again at once, cur
// is not a state.
func (e *Election) current(ctx context.Context) (cur Leader, w <-chan zk.Event, again bool, err error) {
	for {
		list, err := e.q.List(ctx)
		if err != nil {
			return Leader{}, nil, false, err
		}
		if len(list) > 0 {
			info, w, err := e.q.InfoW(ctx, list[0])
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			return leaderOf(info), w, false, err
		}
		type got struct {
			w     <-chan zk.Event
			again bool
		}
		g, err := recipes.Call(ctx, e.sess, func(c *zk.Conn) (got, error) {
			children, _, w, err := c.ChildrenW(e.q.Dir)
			if err == nil && len(contend.Sorted(children, kinds)) > 0 {
				// someone joined between our two reads: the watch is set,
				// and it fires on the next change; read again now.
				return got{again: true}, nil
			}
			if errors.Is(err, zk.ErrNoNode) {
				var exists bool
				exists, _, w, err = c.ExistsW(e.q.Dir) // fires when the election is created
				if err == nil && exists {
					// Created between our two reads: an exists watch would
					// not fire for its children. Read again now.
					return got{again: true}, nil
				}
			}
			return got{w: w}, err
		})
		return Leader{}, g.w, g.again, err
	}
}
