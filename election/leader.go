package election

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/internal/core"
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
	return Leader{Name: i.Name, Value: i.Data, Token: recipes.Token(i.Czxid), Session: i.Session, Created: i.Created}
}

// Leader returns the current leader, or ErrNoLeader. On a Client it waits
// for a live session, and reads again on the next one if its session ends
// meanwhile.
func (e *Election) Leader(ctx context.Context) (Leader, error) {
	if err := e.check(ctx, "leader"); err != nil {
		return Leader{}, err
	}
	return contend.OnLive(ctx, e.binder, "election: leader of "+e.path, e.leader)
}

func (e *Election) leader(ctx context.Context, b *binding) (Leader, error) {
	if err := core.Of(b.Sess).Retry(ctx, b.Ready); err != nil {
		return Leader{}, fmt.Errorf("election: leader of %s: %w", e.path, err)
	}
	for {
		list, err := b.V.List(ctx)
		if err != nil {
			return Leader{}, fmt.Errorf("election: leader of %s: %w", e.path, err)
		}
		if len(list) == 0 {
			return Leader{}, ErrNoLeader
		}
		info, err := b.V.Info(ctx, list[0])
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
// On a Client it reads on the live session, as Leader does.
func (e *Election) Participants(ctx context.Context) ([]Leader, error) {
	if err := e.check(ctx, "participants"); err != nil {
		return nil, err
	}
	return contend.OnLive(ctx, e.binder, "election: participants of "+e.path, e.participants)
}

func (e *Election) participants(ctx context.Context, b *binding) ([]Leader, error) {
	if err := core.Of(b.Sess).Retry(ctx, b.Ready); err != nil {
		return nil, fmt.Errorf("election: participants of %s: %w", e.path, err)
	}
	infos, err := b.V.Describe(ctx)
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
//
// On a Client the channel outlives sessions: when the observer's session
// ends it reads the election again on the next one (after syncing that
// session's server with the ensemble leader, so it never goes back to an
// older state), and sends the leader then if it differs from the last one
// sent. Leaders that came and went while it had no session coalesce like
// changes the reader did not receive. The channel is closed when ctx is
// done or the Client is closed.
func (e *Election) Observe(ctx context.Context) <-chan Leader {
	out := make(chan Leader)
	if e.check(ctx, "observe") != nil || !e.binder.Go(func() { e.observe(ctx, out) }) {
		close(out)
	}
	return out
}

func (e *Election) observe(ctx context.Context, out chan<- Leader) {
	contend.Stream(ctx, e.binder, out, "election observer of "+e.path, e.current, func(l Leader) string {
		return l.Name + "\x00" + string(l.Value)
	})
}

// current reads the leader and leaves a watch that fires when it changes:
// on the leader's node, or on the election's children when it is empty.
func (e *Election) current(ctx context.Context, b *binding) (Leader, <-chan zk.Event, error) {
	for {
		cur, w, again, err := e.read(ctx, b)
		if !again || err != nil {
			return cur, w, err
		}
	}
}

// read is one attempt of current. again says that the election changed
// between two of its reads (a candidate joined, or the election was
// created): read again at once, cur is not a state.
func (e *Election) read(ctx context.Context, b *binding) (cur Leader, w <-chan zk.Event, again bool, err error) {
	for {
		list, err := b.V.List(ctx)
		if err != nil {
			return Leader{}, nil, false, err
		}
		if len(list) > 0 {
			info, w, err := b.V.InfoW(ctx, list[0])
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			return leaderOf(info), w, false, err
		}
		c := b.V.Sess
		ch, err := c.ChildrenW(ctx, b.V.Dir)
		if err == nil && len(contend.Sorted(ch.Value, kinds)) > 0 {
			// someone joined between our two reads: the watch is set, and
			// it fires on the next change; read again now.
			return Leader{}, nil, true, nil
		}
		if !errors.Is(err, zk.ErrNoNode) {
			return Leader{}, ch.Watch, false, err
		}
		ex, err := c.ExistsW(ctx, b.V.Dir) // fires when the election is created
		if err == nil && ex.Value {
			// Created between our two reads: an exists watch would not fire
			// for its children. Read again now.
			return Leader{}, nil, true, nil
		}
		return Leader{}, ex.Watch, false, err
	}
}
