package core

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
// on in a goroutine the session owns until ZooKeeper answers or the
// connection fails, and its result is dropped. Use it for requests that are
// harmless to abandon (reads, deletes); a create that may land after an
// abandoned Call needs a Cleanup that waits for it.
func Call[T any](ctx context.Context, c Client, fn func(*zk.Conn) (T, error)) (T, error) {
	var zero T
	s := c.Session
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
		return fn(s.Conn()) // nothing to cancel: no goroutine needed
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	if !s.Go(func() {
		v, err := fn(s.Conn())
		ch <- result{v, err}
	}) {
		return zero, ErrClosed
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, context.Cause(ctx)
	case <-s.Done():
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
func (c Client) Retry(ctx context.Context, op func(ctx context.Context) error) error {
	if c.Session == nil {
		return ErrNilSession
	}
	var b *backoff.ExponentialBackOff // made on the first failure only
	for {
		err := op(ctx)
		if err == nil || !IsTransient(err) {
			return err
		}
		if serr := c.Err(); serr != nil {
			return serr
		}
		if b == nil {
			b = backoff.NewExponentialBackOff()
			b.InitialInterval = 10 * time.Millisecond
			b.MaxInterval = time.Second
			b.MaxElapsedTime = 0
		}
		if err := AwaitLive(ctx, c.Session, b.NextBackOff()); err != nil {
			return err
		}
	}
}

// AwaitLive waits at least pause, then until the connection is up with
// the session, ctx is done or the session is over.
func AwaitLive(ctx context.Context, s Session, pause time.Duration) error {
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-s.Done():
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
