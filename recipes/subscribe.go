package recipes

import (
	"context"
	"sync"
	"time"
)

// Subscribe returns a channel of the session's state changes from now on.
// No change is dropped: a slow reader only delays its own channel. The
// channel is closed after the StateLost event or when ctx is done. After
// Close, events still queued are offered for up to a second (Close waits
// that long at most for a reader that has stopped reading).
func (s *Session) Subscribe(ctx context.Context) <-chan StateEvent {
	out := make(chan StateEvent)
	f := newFeed[StateEvent]()
	sub := &f
	s.mu.Lock()
	lost := s.state == StateLost
	if !lost {
		s.subs[sub] = struct{}{}
	}
	s.mu.Unlock()
	if lost || !s.spawn(func() { s.deliver(ctx, sub, out) }) {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
		close(out)
	}
	return out
}

func (s *Session) deliver(ctx context.Context, sub *subscriber, out chan<- StateEvent) {
	defer close(out)
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()
	var grace <-chan time.Time // set once Close has begun
	closing := s.closeReq
	for {
		for _, ev := range sub.take() {
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			case <-closing:
				closing, grace = nil, time.After(time.Second)
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				case <-grace:
					return
				}
			case <-grace:
				return
			}
			if ev.State == StateLost {
				return
			}
		}
		select {
		case <-sub.wake:
		case <-ctx.Done():
			return
		case <-closing:
			closing, grace = nil, time.After(time.Second)
		case <-grace:
			return
		}
	}
}

// feed is an unbounded queue for one subscription channel: push never
// blocks, wake says something was pushed, take empties it.
type feed[T any] struct {
	mu    sync.Mutex
	queue []T
	wake  chan struct{}
}

func newFeed[T any]() feed[T] { return feed[T]{wake: make(chan struct{}, 1)} }

func (b *feed[T]) push(ev T) {
	b.mu.Lock()
	b.queue = append(b.queue, ev)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *feed[T]) take() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.queue
	b.queue = nil
	return q
}

// subscriber is the queue of one Session.Subscribe channel.
type subscriber = feed[StateEvent]
