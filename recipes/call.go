package recipes

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-zookeeper/zk"
)

// Call runs fn, a blocking go-zookeeper call on the session's connection,
// and returns its result, or early with ctx's cause or the session's end.
// go-zookeeper calls cannot be cancelled: when Call returns early, fn goes
// on in a goroutine the Session owns until ZooKeeper answers or the
// connection fails, and its result is dropped. Use Call for requests that
// are harmless to abandon (reads, deletes); a create that may land after an
// abandoned Call needs a Cleanup that waits for it.
func Call[T any](ctx context.Context, s *Session, fn func(*zk.Conn) (T, error)) (T, error) {
	var zero T
	if s == nil {
		return zero, ErrNilSession
	}
	if err := context.Cause(ctx); err != nil {
		return zero, err
	}
	if err := s.Err(); err != nil {
		return zero, err
	}
	if ctx.Done() == nil {
		return fn(s.conn) // nothing to cancel: no goroutine needed
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	if !s.spawn(func() {
		v, err := fn(s.conn)
		ch <- result{v, err}
	}) {
		return zero, ErrClosed
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, context.Cause(ctx)
	case <-s.done:
		return zero, s.Err()
	}
}

// IsTransient reports whether err from a go-zookeeper call means the
// connection failed while the session may live on, so the call may be
// retried (after checking whether it took effect, for writes). Besides
// go-zookeeper's own connection errors, a request can fail with the socket
// error that broke the connection under it (a write to a connection the
// server just closed: broken pipe, reset).
func IsTransient(err error) bool {
	var op *net.OpError
	return errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrNoServer) ||
		errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Permanent reports whether err is one that retrying the same request
// cannot cure: the server refused it for its permissions or its arguments.
func Permanent(err error) bool {
	return errors.Is(err, zk.ErrNoAuth) || errors.Is(err, zk.ErrInvalidACL) ||
		errors.Is(err, zk.ErrAuthFailed) || errors.Is(err, zk.ErrBadArguments) ||
		errors.Is(err, zk.ErrNotEmpty) || errors.Is(err, zk.ErrNoChildrenForEphemerals)
}

// Retry runs op until it succeeds, returns an error that is not transient
// (IsTransient), ctx is done or the session is over. Between tries it waits
// for the connection to come back, with exponential backoff.
func Retry(ctx context.Context, s *Session, op func(ctx context.Context) error) error {
	if s == nil {
		return ErrNilSession
	}
	var b *backoff.ExponentialBackOff // made on the first failure only
	for {
		err := op(ctx)
		if err == nil || !IsTransient(err) {
			return err
		}
		if serr := s.Err(); serr != nil {
			return serr
		}
		if b == nil {
			b = backoff.NewExponentialBackOff()
			b.InitialInterval = 10 * time.Millisecond
			b.MaxInterval = time.Second
			b.MaxElapsedTime = 0
		}
		if err := s.awaitLive(ctx, b.NextBackOff()); err != nil {
			return err
		}
	}
}

// awaitLive waits at least pause, then until the connection is up with
// the session, ctx is done or the session is over.
func (s *Session) awaitLive(ctx context.Context, pause time.Duration) error {
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-s.done:
		return s.Err()
	}
	for {
		st, ch := s.Changed()
		switch {
		case st == StateLost:
			return s.Err()
		case st.Live():
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// Cleanup runs fn in the background until it returns nil or the session is
// over (the server then deletes the session's ephemeral nodes itself), with
// backoff between tries, or until fn fails with a Permanent error (logged
// at WARN and counted: zkrecipes.cleanup.nodes{reason="gave_up"}). Recipes
// hand it the deletes that must not be
// forgotten when the caller's context is done or the connection is down.
// fn's context is cancelled when the session ends.
func (s *Session) Cleanup(what string, fn func(ctx context.Context) error) {
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
			if err := s.awaitLive(s.ctx, b.NextBackOff()); err != nil {
				return
			}
		}
	})
}
