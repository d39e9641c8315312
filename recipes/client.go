package recipes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Source is what recipes are built on: a *Session, with which everything
// ends when that session ends, or a *Client, which recipes follow from one
// session to the next.
type Source interface {
	// Live returns a live session. A Session returns itself, or why it is
	// over; a Client waits while it has none (reconnecting) until ctx is
	// done or the Client is closed.
	Live(ctx context.Context) (*Session, error)
	// Lasting reports whether the source outlives its sessions (a Client):
	// recipes that keep something up (Run with requeue, Observe, membership Acquire)
	// carry on with the next session instead of ending.
	Lasting() bool
}

// CheckSource returns ErrNilSession for a nil Source, including a nil
// *Session or *Client in one, for recipe constructors.
func CheckSource(src Source) error {
	switch v := src.(type) {
	case nil:
		return ErrNilSession
	case *Session:
		if v == nil {
			return ErrNilSession
		}
	case *Client:
		if v == nil {
			return ErrNilSession
		}
	}
	return nil
}

// Live returns s if it is live, else why it is over. It never waits.
func (s *Session) Live(ctx context.Context) (*Session, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// Lasting is false: a Session ends for good.
func (s *Session) Lasting() bool { return false }

// ErrClientClosed is returned by a Client's methods once it is closed.
var ErrClientClosed = errors.New("recipes: client closed")

// SessionChange is a Client's move from one session to the next.
type SessionChange struct {
	Old, New int64 // session ids; 0 when there was none (the first session, or Close)
	Cause    error // why the old session ended (nil for the first session)
	Time     time.Time
}

// Client is a long-lived handle for services: it owns the current Session
// and, when that session is lost, opens a new one (with the same options),
// with backoff between failed attempts, until it is closed. A lease never
// moves from one session to the next: a recipe built on a Client gets a new
// grant, with a new and larger token, on the new session.
//
// Connecting: each attempt is a Connect bounded by the connect timeout
// (WithClientConnectTimeout, default twice the session timeout, at least
// 10 s) that gives up at once when every server refuses. Every failed
// attempt is logged at WARN with each server's cause, and the next one
// waits an exponential backoff from 100 ms up to 10 s. A session lost after
// it was granted is replaced at once.
//
// It is safe for concurrent use.
type Client struct {
	servers []string
	opts    []Option
	log     *slog.Logger
	connect time.Duration

	first *Session // WithFirstSession

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	cur     *Session      // nil while there is none
	changed chan struct{} // closed and replaced when cur changes
	subs    map[*changeSub]struct{}
	closed  bool
}

// ClientOption configures a Client.
type ClientOption func(*Client) error

// WithClientConnectTimeout bounds each attempt to open a session.
func WithClientConnectTimeout(d time.Duration) ClientOption {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("recipes: client connect timeout must be positive, got %v", d)
		}
		c.connect = d
		return nil
	}
}

// WithFirstSession makes the Client adopt s, a live session opened with
// the same servers and options (by Connect, say, to report a first failure
// at once), as its first session instead of opening one. The Client owns it
// from then on: it closes it.
func WithFirstSession(s *Session) ClientOption {
	return func(c *Client) error {
		if s == nil {
			return ErrNilSession
		}
		c.first = s
		return nil
	}
}

// NewClient returns a Client for servers that opens its first session in
// the background at once; Live waits for it. opts apply to every session
// (their errors are returned here). Close the Client when done.
func NewClient(servers []string, opts []Option, copts ...ClientOption) (*Client, error) {
	cfg, err := newConfig(servers, opts)
	if err != nil {
		return nil, err
	}
	c := &Client{
		servers: append([]string(nil), servers...),
		opts:    append(append([]Option(nil), opts...), WithFailFast()),
		log:     cfg.logger.With("component", "zkrecipes"),
		connect: max(2*cfg.timeout, 10*time.Second),
		changed: make(chan struct{}),
		subs:    make(map[*changeSub]struct{}),
	}
	for _, o := range copts {
		if o == nil {
			continue
		}
		if err := o(c); err != nil {
			return nil, err
		}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	go c.run()
	return c, nil
}

// Lasting is true: recipes built on a Client follow it to each new session.
func (c *Client) Lasting() bool { return true }

// Live returns the current session, waiting while there is none (the Client
// is opening one), until ctx is done or the Client is closed.
func (c *Client) Live(ctx context.Context) (*Session, error) {
	if ctx == nil {
		return nil, errors.New("recipes: client: nil context")
	}
	for {
		c.mu.Lock()
		s, ch, closed := c.cur, c.changed, c.closed
		c.mu.Unlock()
		if closed {
			return nil, ErrClientClosed
		}
		if s != nil && s.Err() == nil {
			return s, nil
		}
		var done <-chan struct{}
		if s != nil {
			done = s.Done() // lost: the Client replaces it soon
		}
		select {
		case <-ch:
		case <-done:
			// Wait for the replacement: the next change.
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// Current returns the current session without waiting, or nil while there
// is none.
func (c *Client) Current() *Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// Close stops the Client: it closes the current session (ending it on the
// server) and stops reconnecting. It returns promptly even while an attempt
// to connect is under way, and is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	already := c.closed
	if !already {
		c.closed = true
		close(c.changed) // wake Live's waiters: they see the Client closed
		c.changed = make(chan struct{})
	}
	c.mu.Unlock()
	if !already {
		c.cancel()
	}
	c.wg.Wait()
	return nil
}

func (c *Client) run() {
	defer c.wg.Done()
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 10 * time.Second
	b.MaxElapsedTime = 0
	var (
		last  int64
		cause error
	)
	for c.ctx.Err() == nil {
		s, err := c.first, error(nil)
		c.first = nil
		if s == nil {
			actx, cancel := context.WithTimeout(c.ctx, c.connect)
			s, err = Connect(actx, c.servers, c.opts...)
			cancel()
		}
		if err != nil {
			if c.ctx.Err() != nil {
				break
			}
			wait := b.NextBackOff()
			c.log.Warn("cannot open a ZooKeeper session; retrying", "servers", c.servers, "err", err, "retry_in", wait)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
			}
			continue
		}
		b.Reset()
		c.publish(s, SessionChange{Old: last, New: s.ID(), Cause: cause, Time: time.Now()})
		if last != 0 {
			c.log.Info("new ZooKeeper session", "old", fmt.Sprintf("0x%x", last), "new", fmt.Sprintf("0x%x", s.ID()), "cause", cause)
		}
		select {
		case <-s.Done():
			last, cause = s.ID(), s.Err()
			c.publish(nil, SessionChange{Old: last, Cause: cause, Time: time.Now()})
			// Its Close may spend a while telling the server (closing.go):
			// do not let that hold up the next session.
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				s.Close()
			}()
		case <-c.ctx.Done():
			s.Close()
			c.publish(nil, SessionChange{Old: s.ID(), Cause: ErrClientClosed, Time: time.Now()})
		}
	}
	c.mu.Lock()
	for sub := range c.subs {
		sub.stop()
	}
	c.mu.Unlock()
}

// publish makes s current (nil: none) and tells the subscribers.
func (c *Client) publish(s *Session, ev SessionChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = s
	close(c.changed)
	c.changed = make(chan struct{})
	for sub := range c.subs {
		sub.push(ev)
	}
}

// Subscribe returns a channel of the Client's session changes from now on:
// a change with New set when a session is granted, one with New 0 (and the
// Cause) when it is lost. No change is dropped. The channel is closed when
// ctx is done or the Client is closed.
func (c *Client) Subscribe(ctx context.Context) <-chan SessionChange {
	out := make(chan SessionChange)
	sub := &changeSub{feed: newFeed[SessionChange](), done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		close(out)
		return out
	}
	c.subs[sub] = struct{}{}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		defer close(out)
		defer func() {
			c.mu.Lock()
			delete(c.subs, sub)
			c.mu.Unlock()
		}()
		for {
			for _, ev := range sub.take() {
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				case <-sub.done:
					return
				}
			}
			select {
			case <-sub.wake:
			case <-ctx.Done():
				return
			case <-sub.done:
				return
			}
		}
	}()
	return out
}

// changeSub is the queue of one Client.Subscribe channel, stopped when
// the Client closes.
type changeSub struct {
	feed[SessionChange]
	done     chan struct{}
	stopOnce sync.Once
}

func (b *changeSub) stop() { b.stopOnce.Do(func() { close(b.done) }) }
