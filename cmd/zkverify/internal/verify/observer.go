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
	conn   zkReader
	record func(Event)

	mu       sync.Mutex
	known    map[string]map[string]int64 // parent -> children seen alive -> czxid
	cversion map[string]int32            // parent -> cversion at the last listing
	wg       sync.WaitGroup
}

// PollEvery bounds how late the observer may see a change.
const PollEvery = 300 * time.Millisecond

// StartObserver watches every parent in paths until ctx is done.
func StartObserver(ctx context.Context, conn zkReader, paths []string, record func(Event)) *Observer {
	o := &Observer{conn: conn, record: record, known: map[string]map[string]int64{}, cversion: map[string]int32{}}
	for _, p := range paths {
		o.known[p] = map[string]int64{}
		o.wg.Add(1)
		go o.loop(ctx, p)
	}
	return o
}

// Wait waits for the observer loops to end (after ctx is done).
func (o *Observer) Wait() { o.wg.Wait() }

func (o *Observer) loop(ctx context.Context, parent string) {
	defer o.wg.Done()
	blind := false
	setBlind := func(b bool) {
		if b != blind {
			blind = b
			typ := EvObsSeen
			if b {
				typ = EvObsBlind
			}
			o.record(Event{T: now(), Src: "observer", Type: typ, Res: parent})
		}
	}
	for ctx.Err() == nil {
		// Sync first: a server cut off from the quorum would answer with a
		// frozen view; it fails to sync instead, and we count as blind.
		_, err := o.conn.Sync(parent)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			setBlind(true)
			select {
			case <-ctx.Done():
				return
			case <-time.After(PollEvery):
			}
			continue
		}
		kids, st, ch, err := o.conn.ChildrenW(parent)
		cversion := int32(-1)
		if errors.Is(err, zk.ErrNoNode) {
			kids = nil
			_, _, ch, err = o.conn.ExistsW(parent)
		} else if err == nil {
			cversion = st.Cversion
		}
		if err == nil {
			o.update(parent, kids, cversion)
		}
		setBlind(err != nil)
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

// update records what changed since the last listing. A child deleted and
// created again under the same name between two listings (a membership
// node) keeps its name but not its czxid: when the parent's cversion moved
// by more than the changes seen, the surviving children are read again and
// a changed czxid is recorded as a deletion and an addition.
func (o *Observer) update(parent string, kids []string, cversion int32) {
	t := now()
	now := map[string]bool{}
	for _, k := range kids {
		now[k] = true
	}
	o.mu.Lock()
	known := o.known[parent]
	var added, kept []string
	changes := int32(0)
	for k := range known {
		if !now[k] {
			delete(known, k)
			changes++
			o.record(Event{T: t, Src: "observer", Type: EvNodeDel, Node: path.Join(parent, k), Res: parent})
		}
	}
	for k := range now {
		if _, ok := known[k]; !ok {
			added = append(added, k)
			changes++
		} else {
			kept = append(kept, k)
		}
	}
	last, seen := o.cversion[parent]
	if cversion >= 0 {
		o.cversion[parent] = cversion
	}
	recheck := seen && cversion >= 0 && cversion-last > changes
	o.mu.Unlock()
	if recheck {
		for _, k := range kept {
			full := path.Join(parent, k)
			_, st, err := o.conn.Get(full)
			if err != nil {
				continue // gone: the next listing records it
			}
			o.mu.Lock()
			if old, ok := o.known[parent][k]; ok && old != st.Czxid {
				o.record(Event{T: t, Src: "observer", Type: EvNodeDel, Node: full, Res: parent})
				o.record(Event{T: t, Src: "observer", Type: EvNodeAdd, Node: full, Res: parent, Sess: st.EphemeralOwner, Tok: st.Czxid})
				o.known[parent][k] = st.Czxid
			}
			o.mu.Unlock()
		}
	}
	for _, k := range added {
		full := path.Join(parent, k)
		_, st, err := o.conn.Get(full)
		if err != nil {
			continue // gone already (or connection trouble): seen again next time if alive
		}
		o.mu.Lock()
		if _, ok := o.known[parent][k]; !ok {
			o.known[parent][k] = st.Czxid
			o.record(Event{T: t, Src: "observer", Type: EvNodeAdd, Node: full, Res: parent, Sess: st.EphemeralOwner, Tok: st.Czxid})
		}
		o.mu.Unlock()
	}
}

// Children lists the children of every observed parent now (for the final
// orphan check), from a fresh Sync'd read.
func Children(conn zkReader, paths []string) (map[string][]string, error) {
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
