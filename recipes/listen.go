package recipes

import (
	"sync"

	"github.com/go-zookeeper/zk"
)

// listener is one onStateChange registration.
type listener struct{ fn func(StateEvent) }

type note struct {
	l  *listener
	ev StateEvent
}

// onStateChange registers fn to be called with every state change from now
// on, in order, outside the session's locks, and returns a function that
// removes it (a call already queued may still arrive once after removal).
// fn runs on the goroutine that observed the change, which may be
// go-zookeeper's connection loop: it must return quickly and never block;
// hand longer work to spawn or cleanup. Holds use it instead of a goroutine
// each.
//
// A listener registered while a state change is being queued either gets
// the change or was registered after the state was stored (setStateLocked
// stores it before it visits the listeners), so a caller that reads
// State() after registering sees every change one way or the other.
func (s *Session) onStateChange(fn func(StateEvent)) (remove func()) {
	l := &listener{fn: fn}
	sh := &s.listeners[s.listenerSeq.Add(1)%listenerShards]
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[*listener]struct{})
	}
	sh.m[l] = struct{}{}
	sh.mu.Unlock()
	return func() {
		sh.mu.Lock()
		delete(sh.m, l)
		sh.mu.Unlock()
	}
}

// listenerShards splits a session's state listeners: every lease adds one
// when granted and removes it when it ends, and with hundreds of leases in
// flight on a session one lock would be contended by all of them.
const listenerShards = 16

// listenerShard is one shard of a session's state listeners.
type listenerShard struct {
	mu sync.Mutex
	m  map[*listener]struct{}
}

// queueNotesLocked queues ev for every listener. Callers hold s.mu.
func (s *Session) queueNotesLocked(ev StateEvent) {
	for i := range s.listeners {
		sh := &s.listeners[i]
		sh.mu.Lock()
		for l := range sh.m {
			s.notes = append(s.notes, note{l, ev})
		}
		sh.mu.Unlock()
	}
}

// dispatch makes the queued listener calls, in order. Callers call it after
// releasing s.mu.
func (s *Session) dispatch() {
	s.dispatchMu.Lock()
	defer s.dispatchMu.Unlock()
	for {
		s.mu.Lock()
		notes := s.notes
		s.notes = nil
		s.mu.Unlock()
		if len(notes) == 0 {
			return
		}
		for _, n := range notes {
			n.l.fn(n.ev)
		}
	}
}

// nodeListener is one onNodeEvent registration.
type nodeListener struct{ fn func(zk.Event) }

// onNodeEvent registers fn to be called with every watch event the
// connection receives for the node at full (a full path: chroot applied),
// from now on, and returns a function that removes it. It sets no watch:
// the caller sets one (an exists or get with a watch), and fn then sees its
// events, of any watch this session keeps on that node. fn runs on
// go-zookeeper's receive loop before the event reaches any watch channel,
// so events come in the order the server sent them; it must return quickly
// and never block. A hold that watches its own node uses it instead of a
// goroutine that waits on the watch channel.
func (s *Session) onNodeEvent(full string, fn func(zk.Event)) (remove func()) {
	l := &nodeListener{fn: fn}
	s.nodeMu.Lock()
	if s.nodeFuncs == nil {
		s.nodeFuncs = make(map[string][]*nodeListener)
	}
	s.nodeFuncs[full] = append(s.nodeFuncs[full], l)
	s.nodeMu.Unlock()
	return func() {
		s.nodeMu.Lock()
		defer s.nodeMu.Unlock()
		ls := s.nodeFuncs[full]
		for i, x := range ls {
			if x != l {
				continue
			}
			if len(ls) == 1 {
				delete(s.nodeFuncs, full)
			} else { // a new slice: dispatchNode may be reading the old one
				s.nodeFuncs[full] = append(ls[:i:i], ls[i+1:]...)
			}
			return
		}
	}
}

// dispatchNode calls the listeners of ev's node, outside the lock. A
// listener added meanwhile is appended past the length read here, and a
// removal makes a new slice, so the slice read stays as it was.
func (s *Session) dispatchNode(ev zk.Event) {
	s.nodeMu.Lock()
	ls := s.nodeFuncs[ev.Path]
	s.nodeMu.Unlock()
	for _, l := range ls {
		l.fn(ev)
	}
}
