package verify

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// zkReader is what the observer reads through: a *zk.Conn, or a freshConn.
type zkReader interface {
	Sync(path string) (string, error)
	Children(path string) ([]string, *zk.Stat, error)
	ChildrenW(path string) ([]string, *zk.Stat, <-chan zk.Event, error)
	ExistsW(path string) (bool, *zk.Stat, <-chan zk.Event, error)
	Get(path string) ([]byte, *zk.Stat, error)
}

var errNoReconnect = errors.New("verify: the observer's connections are never reconnected")

// freshConn is a go-zookeeper connection that is never reconnected: once
// the session's first connection breaks, the connection is closed and the
// next call opens a new one (a new session). go-zookeeper v1.0.4 re-sends
// the watches it holds on every reconnect, reading its last zxid while
// replies to queued requests write it: a data race the race detector
// reports. The observer holds watches and reconnects whenever the nemesis
// kills or cuts off its server, so it avoids reconnecting at all.
type freshConn struct {
	addrs []string

	mu     sync.Mutex
	c      *zk.Conn
	closed bool
}

func newFreshConn(addrs []string) *freshConn { return &freshConn{addrs: addrs} }

func (f *freshConn) conn() (*zk.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, zk.ErrClosing
	}
	if f.c != nil {
		return f.c, nil
	}
	var had atomic.Bool // a session was granted: dial no more
	var self atomic.Pointer[zk.Conn]
	dial := func(network, addr string, timeout time.Duration) (net.Conn, error) {
		if had.Load() {
			return nil, errNoReconnect
		}
		return net.DialTimeout(network, addr, timeout)
	}
	c, _, err := zk.Connect(f.addrs, 30*time.Second, zk.WithDialer(dial), zk.WithLogger(quietLogger{}),
		zk.WithEventCallback(func(ev zk.Event) {
			switch {
			case ev.Type != zk.EventSession:
			case ev.State == zk.StateHasSession:
				had.Store(true)
			case ev.State == zk.StateDisconnected && had.Load():
				if c := self.Load(); c != nil {
					go f.drop(c)
				}
			}
		}))
	if err != nil {
		return nil, err
	}
	self.Store(c)
	f.c = c
	return c, nil
}

// drop closes c, which broke, so that the next call opens a new connection.
func (f *freshConn) drop(c *zk.Conn) {
	f.mu.Lock()
	if f.c == c {
		f.c = nil
	}
	f.mu.Unlock()
	c.Close()
}

// Close closes the current connection; later calls fail.
func (f *freshConn) Close() {
	f.mu.Lock()
	c := f.c
	f.c, f.closed = nil, true
	f.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// callTimeout bounds each call: a connection whose server stopped answering
// without closing it (paused, or cut off) is dropped after it, and the
// observer counts as blind, instead of waiting for go-zookeeper's receive
// timeout.
const callTimeout = 3 * time.Second

var errCallTimeout = errors.New("verify: no answer in time; connection dropped")

// call runs fn on the current connection, dropping the connection if fn
// does not return within callTimeout.
func call[T any](f *freshConn, fn func(c *zk.Conn) (T, error)) (T, error) {
	var zero T
	c, err := f.conn()
	if err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn(c)
		done <- result{v, err}
	}()
	t := time.NewTimer(callTimeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-t.C:
		f.drop(c) // the call returns once the connection is closed
		return zero, errCallTimeout
	}
}

type children struct {
	kids []string
	st   *zk.Stat
	ch   <-chan zk.Event
}

func (f *freshConn) Sync(p string) (string, error) {
	return call(f, func(c *zk.Conn) (string, error) { return c.Sync(p) })
}

func (f *freshConn) Children(p string) ([]string, *zk.Stat, error) {
	r, err := call(f, func(c *zk.Conn) (children, error) {
		kids, st, err := c.Children(p)
		return children{kids, st, nil}, err
	})
	return r.kids, r.st, err
}

func (f *freshConn) ChildrenW(p string) ([]string, *zk.Stat, <-chan zk.Event, error) {
	r, err := call(f, func(c *zk.Conn) (children, error) {
		kids, st, ch, err := c.ChildrenW(p)
		return children{kids, st, ch}, err
	})
	return r.kids, r.st, r.ch, err
}

func (f *freshConn) ExistsW(p string) (bool, *zk.Stat, <-chan zk.Event, error) {
	type exists struct {
		ok bool
		st *zk.Stat
		ch <-chan zk.Event
	}
	r, err := call(f, func(c *zk.Conn) (exists, error) {
		ok, st, ch, err := c.ExistsW(p)
		return exists{ok, st, ch}, err
	})
	return r.ok, r.st, r.ch, err
}

func (f *freshConn) Get(p string) ([]byte, *zk.Stat, error) {
	type got struct {
		data []byte
		st   *zk.Stat
	}
	r, err := call(f, func(c *zk.Conn) (got, error) {
		d, st, err := c.Get(p)
		return got{d, st}, err
	})
	return r.data, r.st, err
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
