package recipes

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
func (s *Session) onStateChange(fn func(StateEvent)) (remove func()) {
	l := &listener{fn: fn}
	s.mu.Lock()
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
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
