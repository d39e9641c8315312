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

func (f *freshConn) Sync(p string) (string, error) {
	c, err := f.conn()
	if err != nil {
		return "", err
	}
	return c.Sync(p)
}

func (f *freshConn) Children(p string) ([]string, *zk.Stat, error) {
	c, err := f.conn()
	if err != nil {
		return nil, nil, err
	}
	return c.Children(p)
}

func (f *freshConn) ChildrenW(p string) ([]string, *zk.Stat, <-chan zk.Event, error) {
	c, err := f.conn()
	if err != nil {
		return nil, nil, nil, err
	}
	return c.ChildrenW(p)
}

func (f *freshConn) ExistsW(p string) (bool, *zk.Stat, <-chan zk.Event, error) {
	c, err := f.conn()
	if err != nil {
		return false, nil, nil, err
	}
	return c.ExistsW(p)
}

func (f *freshConn) Get(p string) ([]byte, *zk.Stat, error) {
	c, err := f.conn()
	if err != nil {
		return nil, nil, err
	}
	return c.Get(p)
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
