// Package recipes holds the Session shared by every zkrecipes recipe.
//
// A Session is one ZooKeeper session over one go-zookeeper connection. It
// consumes every connection event (none is dropped), publishes state
// changes (connected, suspended, reconnected, lost) and says when the
// session is over through Done and Err. A Session ends for good, and never
// comes back, when any of these happens:
//
//   - the server reports the session expired;
//   - go-zookeeper silently replaces the expired session with a new one
//     (a new session owns none of our ephemeral nodes, so it does not revive ours);
//   - the local deadline passes: no request sent at time t has been proven
//     to reach the leader (see Deadline) and now > t + negotiated timeout −
//     safety margin, so the leader may already have expired the session. A
//     client cut off from the ensemble, or talking to a follower cut off
//     from the leader, learns it is lost before the leader can expire the
//     session, not when the network heals. Err and Context().Err check the
//     deadline themselves, so a process resumed after a pause sees the loss
//     in its first check;
//   - Close is called.
//
// Once over, the Session closes its connection and makes sure the server
// heard it (sending a close of its own on a fresh connection if go-zookeeper's
// went unanswered), so the session's nodes go at once rather than when the
// server expires it: what the client believes and what the server holds
// never disagree for longer than the session timeout.
// Open a new Session to go on.
package recipes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
	"go.opentelemetry.io/otel"

	"github.com/zkrecipes/zkrecipes/internal/clock"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/internal/obs"
	"github.com/zkrecipes/zkrecipes/internal/wire"
)

// Session is one ZooKeeper session shared by recipes. It is safe for
// concurrent use.
type Session struct {
	conn    *zk.Conn
	events  <-chan zk.Event
	dialer  *wire.Dialer
	cfg     config
	log     *slog.Logger
	servers []string

	proof  proof
	proven atomic.Int64 // clock.Instant: newest send proven to have reached the leader (deadline.go)
	// closeAnswered is set when the server answered our close request.
	closeAnswered atomic.Bool
	synced        atomic.Bool     // SyncOnce done
	syncGate      chan struct{}   // one slot, held by SyncOnce's sync
	ctxOut        context.Context // ctx, with an Err that checks the deadline
	// idNow, timeoutNow, stateNow, suspNow and errNow are id, timeout,
	// state, suspensions and err for readers on the hot path (every
	// request reads some): written with them, under mu.
	idNow, timeoutNow atomic.Int64
	stateNow          atomic.Int32
	suspNow           atomic.Uint64
	errNow            atomic.Pointer[error]

	mu          sync.Mutex
	id          int64
	passwd      []byte
	timeout     time.Duration
	state       State
	changed     chan struct{} // closed and replaced at every state change
	err         error
	done        chan struct{}
	closing     bool // no new goroutines once set
	subs        map[*subscriber]struct{}
	notes       []note // listener calls queued under mu, made by dispatch
	suspendedAt time.Time
	suspensions uint64
	attempts    map[string]attempt // last failed attempt per server, until a session is granted

	dispatchMu sync.Mutex // one dispatcher at a time keeps calls in order

	listeners   [listenerShards]listenerShard // state listeners (onStateChange)
	listenerSeq atomic.Uint32                 // spreads them over the shards

	nodeMu    sync.Mutex
	nodeFuncs map[string][]*nodeListener // full path -> its node-event listeners (copy on write)

	created   createdLog
	obs       *obs.Observer
	ctx       context.Context // cancelled, with Err as cause, when the session ends
	cancel    context.CancelCauseFunc
	closeReq  chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Connect opens a session to the ZooKeeper ensemble servers ("host:port")
// and returns once the server has granted it, or with ctx's error (the
// half-open session is then closed).
//
// While no server grants a session, Connect keeps trying every server until
// ctx ends; each failed attempt is logged at WARN with its cause (connection
// refused, no answer, the connection closed during the handshake), and the
// error returned when ctx ends wraps both ctx's cause and the last failure
// of each server. With WithFailFast it returns as soon as every server has
// refused the connection.
func Connect(ctx context.Context, servers []string, opts ...Option) (*Session, error) {
	if ctx == nil {
		return nil, errors.New("recipes: Connect: nil context")
	}
	cfg, err := newConfig(servers, opts)
	if err != nil {
		return nil, err
	}
	if cfg.handshakeTimeout == 0 {
		cfg.handshakeTimeout = max(cfg.timeout/time.Duration(len(servers)), 100*time.Millisecond)
	}

	s := &Session{
		cfg:      cfg,
		log:      cfg.logger.With("component", "zkrecipes"),
		servers:  append([]string(nil), servers...),
		changed:  make(chan struct{}),
		syncGate: make(chan struct{}, 1),
		done:     make(chan struct{}),
		closeReq: make(chan struct{}),
		subs:     make(map[*subscriber]struct{}),
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	s.ctxOut = core.WithChecks(s.ctx, s.checkDeadline)
	if cfg.meters == nil {
		cfg.meters = otel.GetMeterProvider()
	}
	s.obs = obs.New(cfg.meters)
	s.dialer = &wire.Dialer{
		Dial:             cfg.dial,
		HandshakeTimeout: cfg.handshakeTimeout,
		QuietPings:       true, // proveLoop's syncs keep the session touched
		Hooks: wire.Hooks{
			Handshake: s.onHandshake,
			Answered:  func(a wire.Answer) { s.onAnswered(a); s.noteAnswer(a) },
			Created:   s.created.add,
			Track:     trackCreated,
			Failed:    s.onAttemptFailed,
		},
	}
	conn, events, err := zk.Connect(servers, cfg.timeout,
		zk.WithDialer(s.dialer.DialContext),
		zk.WithEventCallback(s.onEvent),
		zk.WithLogger(zkLogger{s.log}),
		zk.WithLogInfo(false),
	)
	if err != nil {
		return nil, fmt.Errorf("recipes: connect to %v: %w", servers, err)
	}
	s.conn, s.events = conn, events
	s.wg.Add(2)
	go s.run()
	go s.proveLoop()

	if err := s.awaitFirstSession(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.checkTimings(); err != nil {
		s.Close()
		return nil, err
	}
	if cfg.authUser != "" {
		if _, err := core.Call(ctx, core.Client{Session: (*engine)(s)}, func(c *zk.Conn) (struct{}, error) {
			return struct{}{}, c.AddAuth("digest", []byte(cfg.authUser+":"+cfg.authPassword))
		}); err != nil {
			s.Close()
			return nil, fmt.Errorf("recipes: digest auth as %q: %w", cfg.authUser, err)
		}
	}
	s.log.Debug("session established", "session", s.idString(), "timeout", s.Timeout())
	return s, nil
}

// newConfig applies opts to the defaults and checks servers: what Connect
// and NewClient check first.
func newConfig(servers []string, opts []Option) (config, error) {
	cfg := config{
		timeout: DefaultSessionTimeout,
		logger:  slog.Default(),
		acl:     zk.WorldACL(zk.PermAll),
		margin:  -1,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return config{}, err
		}
	}
	if len(servers) == 0 {
		return config{}, fmt.Errorf("recipes: no ZooKeeper servers given")
	}
	if cfg.tls != nil {
		cfg.dial = tlsDialer(cfg.tls, cfg.dial)
	}
	for _, s := range servers {
		if err := validateServer(s); err != nil {
			return config{}, err
		}
	}
	return cfg, nil
}

func (s *Session) awaitFirstSession(ctx context.Context) error {
	for {
		st, ch := s.stateChanged()
		switch st {
		case StateConnecting:
		case StateLost:
			return fmt.Errorf("recipes: connect to %v: %w", s.servers, s.Err())
		default:
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			s.noteSilentServers()
			if failed := s.attemptErrors(); failed != nil {
				return fmt.Errorf("recipes: connect to %v: %w; %w", s.servers, context.Cause(ctx), failed)
			}
			return fmt.Errorf("recipes: connect to %v: %w", s.servers, context.Cause(ctx))
		}
	}
}

// Conn returns the underlying go-zookeeper connection, for reads and writes
// that no recipe covers. Do not Close it: Close the Session.
func (s *Session) Conn() *zk.Conn { return s.conn }

// ID returns the ZooKeeper session id this Session owns. It never changes.
func (s *Session) ID() int64 { return s.idNow.Load() }

// Credentials returns the session id and password, for tools that act on the
// session from outside (zktest.Expire does). Keep the password secret.
func (s *Session) Credentials() (id int64, password []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id, append([]byte(nil), s.passwd...)
}

// Timeout returns the session timeout negotiated with the server.
func (s *Session) Timeout() time.Duration { return time.Duration(s.timeoutNow.Load()) }

// LossPolicy returns the session's default loss policy for recipes.
func (s *Session) LossPolicy() LossPolicy { return s.cfg.policy }

// ACL returns the ACL recipes give the nodes they create.
func (s *Session) ACL() []zk.ACL { return s.cfg.acl }

// Logger returns the session's logger.
func (s *Session) Logger() *slog.Logger { return s.log }

// Path returns p under the session's chroot (p itself without one).
func (s *Session) Path(p string) string { return s.cfg.chroot + p }

// unpath strips the session's chroot from a full path.
func (s *Session) unpath(full string) string {
	if s.cfg.chroot == "" {
		return full
	}
	return strings.TrimPrefix(full, s.cfg.chroot)
}

// Done is closed when the session is over for good.
func (s *Session) Done() <-chan struct{} { return s.done }

// Context returns a context that is cancelled when the session is over;
// context.Cause gives the reason (the same as Err). Its Err, like the
// Session's, checks the local deadline first.
func (s *Session) Context() context.Context { return s.ctxOut }

// Err returns nil while the session lives, then why it ended: ErrClosed,
// ErrExpired, ErrSessionChanged, ErrDeadline or ErrAuthFailed (possibly
// wrapped). It checks the local deadline itself: once the deadline has
// passed it never returns nil, even if the session's goroutine has not run
// yet (after a process pause, for instance).
func (s *Session) Err() error {
	s.checkDeadline()
	if p := s.errNow.Load(); p != nil {
		return *p
	}
	return nil
}

// State returns the current state.
func (s *Session) State() State { return State(s.stateNow.Load()) }

// suspensionCount returns how many times the session has been suspended so
// far. A recipe that reads it before a decision and again after knows
// whether the connection dropped in between, even if it is back.
func (s *Session) suspensionCount() uint64 { return s.suspNow.Load() }

// stateChanged returns the current state and a channel that is closed at the next
// state change. Recipes select on it to re-check their condition after a
// suspension or a reconnect without missing a change.
func (s *Session) stateChanged() (State, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.changed
}

func (s *Session) margin() time.Duration { return s.marginFor(s.Timeout()) }

// marginFor is the safety margin for timeout t; it takes no lock.
func (s *Session) marginFor(t time.Duration) time.Duration {
	if s.cfg.margin >= 0 {
		return s.cfg.margin
	}
	return max(t/10, 50*time.Millisecond)
}

// Close ends the session, on the server too, stops every goroutine the
// Session started and waits for them. It is idempotent and returns nil.
// If the server did not answer go-zookeeper's close request, Close sends
// one itself, to each server in turn, for up to the session timeout (after
// that the server has expired the session anyway): with an unreachable
// ensemble, Close can take that long.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.lose(ErrClosed)
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		close(s.closeReq)
	})
	s.wg.Wait()
	return nil
}

func (s *Session) idString() string { return fmt.Sprintf("0x%x", s.ID()) }

// setState records a state change and wakes everyone waiting on Changed.
// Callers hold s.mu.
func (s *Session) setStateLocked(st State, err error) {
	if s.state == st || s.state == StateLost {
		return
	}
	now := time.Now()
	prev := s.state
	var suspendedFor time.Duration
	if prev == StateSuspended && !s.suspendedAt.IsZero() {
		suspendedFor = now.Sub(s.suspendedAt)
	}
	// Counted before Done closes: whoever waits on Done sees the count.
	s.obs.Transition(st.String(), err, suspendedFor)
	s.state = st
	s.stateNow.Store(int32(st))
	switch st {
	case StateSuspended:
		s.suspendedAt = now
		s.suspensions++
		s.suspNow.Store(s.suspensions)
	case StateLost:
		s.err = err
		s.errNow.Store(&err)
		s.cancel(err)
		close(s.done)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	ev := StateEvent{State: st, Time: now, Err: err}
	for sub := range s.subs {
		sub.push(ev)
	}
	s.queueNotesLocked(ev)
	lvl := slog.LevelDebug // connected, reconnected and a Close are routine
	if st == StateSuspended || (st == StateLost && !errors.Is(err, ErrClosed)) {
		lvl = slog.LevelWarn
	}
	attrs := []any{"session", fmt.Sprintf("0x%x", s.id), "from", prev.String(), "to", st.String()}
	if err != nil {
		attrs = append(attrs, "cause", err)
	}
	if st == StateReconnected && !s.suspendedAt.IsZero() {
		attrs = append(attrs, "suspended_for", now.Sub(s.suspendedAt))
	}
	s.log.Log(context.Background(), lvl, "session state", attrs...)
}

// lose ends the session for good with err as the reason.
func (s *Session) lose(err error) {
	s.mu.Lock()
	s.setStateLocked(StateLost, err)
	s.mu.Unlock()
	s.dispatch()
}

// onHandshake runs on go-zookeeper's connection goroutine just before it
// reports StateHasSession, so a replaced session is caught before any
// request is sent on it.
func (s *Session) onHandshake(h wire.Handshake) {
	defer s.dispatch()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case h.SessionID == 0:
		if s.id != 0 {
			s.setStateLocked(StateLost, ErrExpired)
		}
		return
	case s.id == 0:
		s.id, s.passwd, s.timeout = h.SessionID, h.Password, h.Timeout
		s.idNow.Store(s.id)
		s.timeoutNow.Store(int64(s.timeout))
	case h.SessionID != s.id:
		s.setStateLocked(StateLost, fmt.Errorf("%w: 0x%x became 0x%x", ErrSessionChanged, s.id, h.SessionID))
		return
	default:
		s.timeout = h.Timeout
		s.timeoutNow.Store(int64(s.timeout))
	}
	s.proof.handshake(h.Sent)
	s.storeProven(h.Sent)
}

// onEvent consumes every go-zookeeper event. It never blocks.
func (s *Session) onEvent(ev zk.Event) {
	if ev.Type != zk.EventSession {
		s.dispatchNode(ev)
		return
	}
	defer s.dispatch()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.State {
	case zk.StateHasSession:
		switch s.state {
		case StateConnecting:
			if s.id != 0 {
				s.attempts = nil
				s.setStateLocked(StateConnected, nil)
			}
		case StateSuspended:
			s.attempts = nil
			s.setStateLocked(StateReconnected, nil)
		}
	case zk.StateDisconnected:
		if s.state.Live() {
			s.setStateLocked(StateSuspended, nil)
		}
	case zk.StateExpired:
		s.setStateLocked(StateLost, ErrExpired)
	case zk.StateAuthFailed:
		s.setStateLocked(StateLost, ErrAuthFailed)
	}
}

// run enforces the local deadline while the session lives, then closes the
// connection, waits for go-zookeeper's goroutines to finish, and makes sure
// the server heard that the session is over (closing.go).
func (s *Session) run() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for s.waitDeadline(timer) {
	}
	s.dispatch() // a loss found by checkDeadline elsewhere left its notes to us
	if errors.Is(s.Err(), ErrDeadline) {
		// Nothing answers on this connection: a close request sent on it
		// would only make go-zookeeper wait. endOnServer sends one anew.
		s.dialer.CloseAll()
	}
	s.stopConn()
	s.endOnServer()
}

// stopConn closes go-zookeeper's connection and waits for its goroutines.
func (s *Session) stopConn() {
	s.conn.Close()
	// Break a connection that go-zookeeper would otherwise wait on until
	// its read deadline, then wait for its loop to end (it closes events).
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	giveUp := time.After(30 * time.Second)
	s.dialer.CloseAll()
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return
			}
		case <-tick.C:
			s.dialer.CloseAll()
		case <-giveUp:
			s.log.Error("go-zookeeper connection did not stop within 30s", "session", s.idString())
			return
		}
	}
}

// waitDeadline waits until the session ends or its local deadline passes;
// it returns false when the session is over.
func (s *Session) waitDeadline(timer *time.Timer) bool {
	st, changed := s.stateChanged()
	if st == StateLost {
		return false
	}
	if st == StateConnecting {
		select {
		case <-changed:
		case <-s.done:
		}
		return true
	}
	s.checkDeadline()
	left := s.deadline().Sub(clock.Now())
	if left <= 0 || s.Err() != nil {
		return false
	}
	// Wake up now and then even so: timers run on Go's monotonic clock,
	// which stops while the host is suspended; the deadline's does not.
	timer.Reset(min(left, max(s.Timeout()/8, 10*time.Millisecond)))
	select {
	case <-timer.C:
	case <-s.done:
		return false
	}
	return true
}

// spawn runs fn in a goroutine owned by the session: Close waits for it. fn
// must return soon after the session is over (Done). spawn returns false,
// and does not run fn, once Close has begun.
func (s *Session) spawn(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

type zkLogger struct{ l *slog.Logger }

func (z zkLogger) Printf(format string, args ...any) {
	z.l.Debug("go-zookeeper: " + fmt.Sprintf(format, args...))
}
