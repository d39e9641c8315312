package recipes

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/wire"
)

// A session the client ends (Close, or its local deadline passed) may still
// live on the server, holding its ephemeral nodes, and so its locks, until
// the server expires it. go-zookeeper's Close sends a close request, but
// drops it when the connection is being torn down at that moment (and a
// client that gave up on a silent connection has nothing to send it on).
// So, once go-zookeeper has stopped, a Session whose close was not answered
// sends one itself, on a connection of its own, to each server in turn,
// until one answers or the session timeout has passed (by then the server
// has expired the session anyway).

// noteAnswer records that the server answered our close request.
func (s *Session) noteAnswer(a wire.Answer) {
	if a.Op == wire.OpCloseSession {
		s.closeAnswered.Store(true)
	}
}

// serverMayHold reports whether the server may still hold the session
// after it ended with err.
func serverMayHold(err error) bool {
	return !errors.Is(err, ErrExpired) && !errors.Is(err, ErrSessionChanged) &&
		!errors.Is(err, ErrAuthFailed) && !errors.Is(err, ErrUnreachable)
}

// endOnServer makes sure the server heard that the session is over; see
// above. It runs on the session's goroutine after go-zookeeper stopped.
func (s *Session) endOnServer() {
	id, passwd := s.Credentials()
	if id == 0 || !serverMayHold(s.Err()) {
		return
	}
	if s.closeAnswered.Load() {
		s.obs.Closed("acknowledged")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout())
	defer cancel()
	servers := append([]string(nil), s.servers...)
	rand.Shuffle(len(servers), func(i, j int) { servers[i], servers[j] = servers[j], servers[i] })
	var errs []error
	// Short attempts first: a server that does not answer at once may do
	// so a moment later (a healed partition); longer ones after.
	attempt, longest := 250*time.Millisecond, max(s.Timeout()/time.Duration(len(servers)), 250*time.Millisecond)
	for ctx.Err() == nil {
		for _, addr := range servers {
			actx, acancel := context.WithTimeout(ctx, attempt)
			err := wire.CloseSession(actx, s.cfg.dial, addr, id, passwd)
			acancel()
			if errors.Is(err, wire.ErrSessionOver) {
				s.obs.Closed("already_over")
				s.log.Debug("the server had ended the session already", "session", s.idString(), "server", addr)
				return
			}
			if err == nil {
				s.obs.Closed("resent")
				s.log.Info("session ended on the server by a close of our own (the first close request went unanswered)",
					"session", s.idString(), "server", addr)
				return
			}
			errs = append(errs, err)
		}
		attempt = min(2*attempt, longest)
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.obs.Closed("failed")
	s.log.Warn("could not end the session on the server; it holds the session's nodes until it expires it",
		"session", s.idString(), "timeout", s.Timeout(), "errors", errors.Join(errs...))
}
