package recipes

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/zkrecipes/zkrecipes/internal/core"
)

// IsTransient reports whether err from a go-zookeeper call means the
// connection failed while the session may live on, so the call may be
// retried (after checking whether it took effect, for writes). Besides
// go-zookeeper's own connection errors, a request can fail with the socket
// error that broke the connection under it (a write to a connection the
// server just closed: broken pipe, reset).
func IsTransient(err error) bool { return core.IsTransient(err) }

// Permanent reports whether err is one that retrying the same request
// cannot cure: the server refused it for its permissions or its arguments.
func Permanent(err error) bool { return core.Permanent(err) }

// cleanup runs fn in the background until it returns nil or the session is
// over (the server then deletes the session's ephemeral nodes itself), with
// backoff between tries, or until fn fails with a Permanent error (logged
// at WARN and counted: zkrecipes.cleanup.nodes{reason="gave_up"}). Recipes
// hand it the deletes that must not be
// forgotten when the caller's context is done or the connection is down.
// fn's context is cancelled when the session ends.
func (s *Session) cleanup(what string, fn func(ctx context.Context) error) {
	s.spawn(func() {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval = 20 * time.Millisecond
		b.MaxInterval = 2 * time.Second
		b.MaxElapsedTime = 0
		for try := 1; ; try++ {
			err := fn(s.ctx)
			if err == nil {
				if try > 1 {
					s.log.Info("cleanup done", "what", what, "tries", try)
				}
				return
			}
			if s.Err() != nil {
				s.log.Debug("cleanup ended with the session", "what", what, "err", err)
				return
			}
			if Permanent(err) {
				// Retrying cannot help (an ACL that denies us, say): say so
				// once, loudly, rather than for the life of the session.
				s.obs.Cleaned("gave_up", err)
				s.log.Warn("cleanup gave up: the error will not go away by retrying; the node stays until the session ends",
					"what", what, "try", try, "err", err)
				return
			}
			s.log.Warn("cleanup failed; retrying", "what", what, "try", try, "err", err)
			if err := core.AwaitLive(s.ctx, (*engine)(s), b.NextBackOff()); err != nil {
				return
			}
		}
	})
}
