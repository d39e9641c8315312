package verify

import (
	"context"
	"errors"
	"path"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// Observer records the children of the recipe paths over time, with the
// session that owns each (EphemeralOwner) and its czxid, from its own
// connection to the ensemble. It re-lists on every watch event and at least
// every PollEvery, so a watch lost in a reconnect only delays it.
type Observer struct {
	conn   *zk.Conn
	record func(Event)

	mu    sync.Mutex
	known map[string]map[string]bool // parent -> children seen alive
	wg    sync.WaitGroup
}

// PollEvery bounds how late the observer may see a change.
const PollEvery = 300 * time.Millisecond

// StartObserver watches every parent in paths until ctx is done.
func StartObserver(ctx context.Context, conn *zk.Conn, paths []string, record func(Event)) *Observer {
	o := &Observer{conn: conn, record: record, known: map[string]map[string]bool{}}
	for _, p := range paths {
		o.known[p] = map[string]bool{}
		o.wg.Add(1)
		go o.loop(ctx, p)
	}
	return o
}

// Wait waits for the observer loops to end (after ctx is done).
func (o *Observer) Wait() { o.wg.Wait() }

func (o *Observer) loop(ctx context.Context, parent string) {
	defer o.wg.Done()
	for ctx.Err() == nil {
		kids, _, ch, err := o.conn.ChildrenW(parent)
		if errors.Is(err, zk.ErrNoNode) {
			kids = nil
			_, _, ch, err = o.conn.ExistsW(parent)
		}
		if err == nil {
			o.update(parent, kids)
		}
		var wake <-chan zk.Event
		if err == nil {
			wake = ch
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-time.After(PollEvery):
		}
	}
}

func (o *Observer) update(parent string, kids []string) {
	t := now()
	now := map[string]bool{}
	for _, k := range kids {
		now[k] = true
	}
	o.mu.Lock()
	known := o.known[parent]
	var added []string
	for k := range known {
		if !now[k] {
			delete(known, k)
			o.record(Event{T: t, Src: "observer", Type: EvNodeDel, Node: path.Join(parent, k), Res: parent})
		}
	}
	for k := range now {
		if !known[k] {
			added = append(added, k)
		}
	}
	o.mu.Unlock()
	for _, k := range added {
		full := path.Join(parent, k)
		_, st, err := o.conn.Get(full)
		if err != nil {
			continue // gone already (or connection trouble): seen again next time if alive
		}
		o.mu.Lock()
		if !o.known[parent][k] {
			o.known[parent][k] = true
			o.record(Event{T: t, Src: "observer", Type: EvNodeAdd, Node: full, Res: parent, Sess: st.EphemeralOwner, Tok: st.Czxid})
		}
		o.mu.Unlock()
	}
}

// Children lists the children of every observed parent now (for the final
// orphan check), from a fresh Sync'd read.
func Children(conn *zk.Conn, paths []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, p := range paths {
		if _, err := conn.Sync(p); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return nil, err
		}
		kids, _, err := conn.Children(p)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(kids) > 0 {
			out[p] = kids
		}
	}
	return out, nil
}

var _ = context.Background
