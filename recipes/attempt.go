package recipes

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/wire"
)

// ErrUnreachable is wrapped by Connect's error under WithFailFast when every
// server refused the connection before any session was granted.
var ErrUnreachable = errors.New("recipes: no ZooKeeper server reachable")

// attempt is the last failed attempt to reach one server.
type attempt struct {
	err    error
	warned time.Time // when this server's failure was last logged at WARN
	cause  string    // the text last logged, to log a new cause at once
}

// attemptWarnEvery spaces the WARN lines for a server that keeps failing
// for the same reason; a new reason is logged at once.
const attemptWarnEvery = 10 * time.Second

// validateServer checks a "host:port" server address.
func validateServer(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("recipes: server address %q is not host:port", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("recipes: server address %q: port %q is not a number from 1 to 65535", addr, port)
	}
	return nil
}

// onAttemptFailed runs on go-zookeeper's connection goroutine when a server
// could not be reached or did not complete the handshake. Until the first
// session is granted it remembers why, for Connect's error, and logs it; the
// same cause again is logged at most every attemptWarnEvery.
func (s *Session) onAttemptFailed(addr string, err error) {
	s.mu.Lock()
	if s.state != StateConnecting && s.state != StateSuspended {
		s.mu.Unlock()
		return
	}
	if s.attempts == nil {
		s.attempts = make(map[string]attempt)
	}
	a := s.attempts[addr]
	a.err = err
	now := time.Now()
	warn := err.Error() != a.cause || now.Sub(a.warned) >= attemptWarnEvery
	if warn {
		a.warned, a.cause = now, err.Error()
	}
	s.attempts[addr] = a
	unreachable := s.state == StateConnecting && s.id == 0 && s.cfg.failFast && s.allRefusedLocked()
	s.mu.Unlock()

	if warn {
		s.log.Warn("cannot reach ZooKeeper server", "server", addr, "cause", err)
	} else {
		s.log.Debug("cannot reach ZooKeeper server", "server", addr, "cause", err)
	}
	if unreachable {
		s.lose(fmt.Errorf("%w: %w", ErrUnreachable, s.attemptErrors()))
	}
}

// noteSilentServers records, for Connect's error, the servers that accepted
// a connection and have not answered its handshake.
func (s *Session) noteSilentServers() {
	silent := s.dialer.Handshaking()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attempts == nil {
		s.attempts = make(map[string]attempt)
	}
	for addr, d := range silent {
		a := s.attempts[addr]
		a.err = fmt.Errorf("%w: the server accepted the connection but has not answered for %v", wire.ErrNoHandshake, d.Round(time.Millisecond))
		s.attempts[addr] = a
	}
}

// allRefusedLocked reports whether every server refused its last attempt.
// Callers hold s.mu.
func (s *Session) allRefusedLocked() bool {
	for _, addr := range s.servers {
		a, ok := s.attempts[addr]
		if !ok || !refused(a.err) {
			return false
		}
	}
	return true
}

// refused reports whether err says nothing listens at the address, or a
// TLS failure another attempt cannot cure, as opposed to a server that is
// slow or silent.
func refused(err error) bool {
	var dns *net.DNSError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || (errors.As(err, &dns) && dns.IsNotFound) ||
		tlsRefused(err)
}

// attemptErrors joins the last failure of each server, in the order the
// servers were given, or returns nil if none failed.
func (s *Session) attemptErrors() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, addr := range s.servers {
		if a, ok := s.attempts[addr]; ok {
			errs = append(errs, fmt.Errorf("%s: %w", addr, a.err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return attemptsError(errs)
}

// attemptsError lists failed attempts on one line, each wrapped.
type attemptsError []error

func (e attemptsError) Error() string {
	var b strings.Builder
	for i, err := range e {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e attemptsError) Unwrap() []error { return e }
