package recipes

import (
	"fmt"
	"sync"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/clock"
	"github.com/zkrecipes/zkrecipes/internal/wire"
)

// The local deadline.
//
// The leader expires a session T (the negotiated timeout, rounded up to its
// tick) after the last time it touched it. A client connected to a follower
// is touched at the leader only indirectly: the follower records every
// request it receives from the client (pings included), and hands the
// record to the leader in its reply to the leader's next ping, which the
// leader sends every tickTime/2. A follower cut off from the leader goes on
// answering its clients' pings by itself, for up to syncLimit·tickTime, so
// an answered ping proves nothing about the leader.
//
// What proves the leader's view:
//
//   - a handshake (a new session is created by the leader; a reconnect is
//     revalidated by it, which touches the session): the leader touched us
//     after the handshake was sent;
//   - a sync, which a follower forwards to the leader and answers only once
//     the leader answered it. If request j was answered at r_j and a sync
//     k sent at s_k ≥ r_j + D was answered, the follower received j before
//     r_j, the leader's next ping reached the follower within D of that
//     (D covers the ping interval, tickTime/2, and the delivery between the
//     servers, up to another tickTime/2), so the follower's ping reply
//     carrying j's touch went out before it forwarded k, and the leader,
//     which reads each follower's stream in order, applied the touch before
//     it answered k. The leader therefore touched the session after s_j.
//
// The proven instant is the newest such send time; the local deadline is
// proven + T − margin. Past it the leader may have expired the session, and
// the Session counts as lost. A Session sends a sync every I so the proof
// keeps up: a healthy session's proof lags by about D + 2·I, which must
// stay below T − margin with room to spare for a slow answer. I is a fifth
// of that budget, (T − margin − D)/5, so the lag takes 40 % of it: about
// T/12 when D is unknown (T/2), and less often when WithServerTickTime
// gives the servers' tick (T/5.7 for a 200 ms tick and T = 10 s).
//
// D is the server's tickTime (WithServerTickTime) or, when unknown, T/2:
// the server never grants a timeout under 2·tickTime unless its operator
// lowered minSessionTimeout below that.
//
// The argument assumes the session still exists at the leader: the leader
// answers a follower's sync without looking at the session. A session the
// ensemble ended can live on at a follower that missed the close on its
// connection-closing path; the leader then refuses the session's writes
// with "session expired", and onAnswered ends the Session at the first
// such answer.

// syncShare is the share of the proof's budget, T − margin − D, that one
// sync interval takes (syncInterval).
const syncShare = 5

// answered is one answered request that may become proof.
type answered struct {
	sent, received clock.Instant
}

// proof tracks the newest send instant proven to have touched the session
// at the leader.
type proof struct {
	mu      sync.Mutex
	pending []answered // received in increasing order, not yet proven
	proven  clock.Instant
}

// handshake records a handshake sent at sent: proof at once.
func (p *proof) handshake(sent clock.Instant) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = p.pending[:0] // all sent before this handshake
	p.proven = max(p.proven, sent)
}

// answer records a reply and returns the proven instant. delay is D;
// spacing bounds how close together pending entries are kept (a later
// entry within spacing of the previous one is dropped: the proof it would
// give is at most spacing newer).
func (p *proof) answer(a wire.Answer, delay, spacing time.Duration) clock.Instant {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a.Op == wire.OpSync && a.Err == 0 {
		limit := a.Sent.Add(-delay)
		n := 0
		for n < len(p.pending) && p.pending[n].received <= limit {
			p.proven = max(p.proven, p.pending[n].sent)
			n++
		}
		p.pending = append(p.pending[:0], p.pending[n:]...)
	}
	if a.Err == errSessionExpired || a.Err == errSessionMoved {
		return p.proven // the server did not touch the session
	}
	if k := len(p.pending); k == 0 || a.Sent.Sub(p.pending[k-1].sent) >= spacing {
		p.pending = append(p.pending, answered{a.Sent, a.Received})
	}
	return p.proven
}

// errExpiredReply ends a session when a request is answered with "session
// expired".
var errExpiredReply = fmt.Errorf("%w (a request was answered so while the connection stayed open)", ErrExpired)

// ZooKeeper reply codes for which the server did not touch the session.
const (
	errSessionExpired = -112
	errSessionMoved   = -118
)

// proofDelay is D: the server's tickTime when known, else T/2.
func (s *Session) proofDelay() time.Duration {
	if s.cfg.serverTick > 0 {
		return s.cfg.serverTick
	}
	return s.Timeout() / 2
}

func (s *Session) onAnswered(a wire.Answer) {
	if a.Err == errSessionExpired && a.Op != wire.OpCloseSession {
		// The leader refused a request because the session is over, on a
		// connection the server keeps open: a follower can go on answering
		// the pings (and forwarding the syncs) of a session the ensemble
		// ended, when the session's close reached it on another path than
		// the one that closes its connections. The session is over: end it
		// here, or it would live on with no node and every write failing.
		s.lose(errExpiredReply)
		return
	}
	t := s.Timeout()
	s.storeProven(s.proof.answer(a, s.proofDelay(), max(t/200, time.Millisecond)))
}

func (s *Session) storeProven(at clock.Instant) {
	for {
		cur := s.proven.Load()
		if int64(at) <= cur || s.proven.CompareAndSwap(cur, int64(at)) {
			return
		}
	}
}

// deadline returns the local deadline on the deadline clock.
func (s *Session) deadline() clock.Instant {
	return clock.Instant(s.proven.Load()).Add(s.Timeout() - s.margin())
}

// Deadline returns the local deadline: the send time of the newest request
// proven to have reached the leader (see WithServerTickTime), plus the
// negotiated timeout, minus the safety margin. Past it the session counts
// as lost even if no event says so. It is measured on a clock that counts
// time the host spent suspended (Linux); the time.Time returned is that
// instant as seen now.
func (s *Session) Deadline() time.Time { return s.deadline().Time() }

// checkDeadline ends the session with ErrDeadline if it is live and its
// local deadline has passed. It runs no listener itself (the session's own
// goroutine does, at once), so any code may call it, listeners included.
func (s *Session) checkDeadline() {
	now := clock.Now()
	if now <= s.deadline() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case StateConnected, StateSuspended, StateReconnected:
		proven := clock.Instant(s.proven.Load())
		if now > proven.Add(s.timeout-s.marginFor(s.timeout)) {
			s.setStateLocked(StateLost, fmt.Errorf("%w (last request proven to reach the leader sent %v ago, timeout %v)",
				ErrDeadline, now.Sub(proven).Round(time.Millisecond), s.timeout))
		}
	}
}

// syncInterval is I, how often the Session sends a sync (see above).
func (s *Session) syncInterval() time.Duration {
	return max((s.Timeout()-s.margin()-s.proofDelay())/syncShare, 5*time.Millisecond)
}

// proveLoop sends a sync every syncInterval while the session lives, so
// that the proof of the leader's view keeps up (see above).
func (s *Session) proveLoop() {
	defer s.wg.Done()
	for {
		t := time.NewTimer(s.syncInterval())
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return
		}
		if st := s.State(); st == StateConnected || st == StateReconnected {
			_, _ = s.conn.Sync("/") // the answer is seen by the wire hooks
		}
	}
}

// checkTimings checks the options that depend on the negotiated timeout.
func (s *Session) checkTimings() error {
	t := s.Timeout()
	if s.cfg.margin >= t {
		return fmt.Errorf("recipes: safety margin %v is not smaller than the negotiated session timeout %v", s.cfg.margin, t)
	}
	if s.cfg.serverTick > t/2 {
		return fmt.Errorf("recipes: server tickTime %v is more than half the negotiated session timeout %v (the server grants at least 2·tickTime)", s.cfg.serverTick, t)
	}
	// The proof's budget must leave room for a few syncs: at least T/6, so
	// that the sync interval is at least T/30.
	if left := t - s.margin() - s.proofDelay() - t/6; left <= 0 {
		return fmt.Errorf("recipes: safety margin %v and proof delay %v leave no time in the negotiated session timeout %v", s.margin(), s.proofDelay(), t)
	}
	return nil
}
