package zktest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// ConnOption configures Cluster.Conn and Proxy.Conn.
type ConnOption func(*connConfig)

type connConfig struct {
	sessionTimeout time.Duration
	logger         zk.Logger
}

// ConnSessionTimeout sets the session timeout the connection asks for
// (default 5 s).
func ConnSessionTimeout(d time.Duration) ConnOption {
	return func(c *connConfig) { c.sessionTimeout = d }
}

// ConnLogger sets the go-zookeeper logger (default: discard everything).
func ConnLogger(l zk.Logger) ConnOption {
	return func(c *connConfig) { c.logger = l }
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

const connectTimeout = 20 * time.Second

// Conn opens a raw go-zookeeper connection to the cluster, for observing
// what recipes do. It returns once the connection has a session (the test
// fails after 20 s) and is closed by t.Cleanup. Its logger is silenced and
// its event channel drained. Its session can be expired with ExpireConn.
func (c *Cluster) Conn(t testing.TB, opts ...ConnOption) *zk.Conn {
	t.Helper()
	return dialConn(t, c.addrs, opts) // plain ports: a zk.Conn has no TLS
}

// ServerConn opens a raw go-zookeeper connection to server i alone (its
// address in Addrs), for observing what one server says: the leader's view
// while a follower is cut off, say. Otherwise it is Conn: it returns once
// the connection has a session and is closed by t.Cleanup.
func (c *Cluster) ServerConn(t testing.TB, i int, opts ...ConnOption) *zk.Conn {
	t.Helper()
	if i < 0 || i >= len(c.addrs) {
		t.Fatalf("zktest: server index %d out of range [0,%d)", i, len(c.addrs))
	}
	return dialConn(t, c.addrs[i:i+1], opts)
}

func dialConn(t testing.TB, addrs []string, opts []ConnOption) *zk.Conn {
	t.Helper()
	cfg := connConfig{sessionTimeout: 5 * time.Second, logger: discardLogger{}}
	for _, o := range opts {
		o(&cfg)
	}
	rec := &credRecorder{creds: make(map[int64][]byte)}
	dialer := func(network, address string, timeout time.Duration) (net.Conn, error) {
		nc, err := net.DialTimeout(network, address, timeout)
		if err != nil {
			return nil, err
		}
		return &sniffConn{Conn: nc, rec: rec}, nil
	}
	conn, _, err := zk.Connect(addrs, cfg.sessionTimeout,
		zk.WithDialer(dialer),
		zk.WithLogger(cfg.logger),
		zk.WithLogInfo(false),
		// A callback instead of the event channel: nothing to drain, nothing dropped.
		zk.WithEventCallback(func(zk.Event) {}),
	)
	if err != nil {
		t.Fatalf("zktest: zk.Connect(%v): %v", addrs, err)
	}
	credConns.Store(conn, rec)
	t.Cleanup(func() {
		conn.Close()
		credConns.Delete(conn)
	})
	deadline := time.Now().Add(connectTimeout)
	for conn.State() != zk.StateHasSession {
		if time.Now().After(deadline) {
			t.Fatalf("zktest: no ZooKeeper session from %v within %v (state %v)", addrs, connectTimeout, conn.State())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return conn
}

// credConns maps *zk.Conn to the *credRecorder of its dialer.
var credConns sync.Map

type credRecorder struct {
	mu    sync.Mutex
	creds map[int64][]byte
}

func lookupCredentials(conn *zk.Conn, id int64) ([]byte, bool) {
	v, ok := credConns.Load(conn)
	if !ok {
		return nil, false
	}
	rec := v.(*credRecorder)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	p, ok := rec.creds[id]
	return p, ok
}

// sniffConn reads the ConnectResponse (the first frame the server sends)
// as it passes and records the session id and password.
type sniffConn struct {
	net.Conn
	rec  *credRecorder
	buf  []byte
	done bool
}

func (s *sniffConn) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if !s.done && n > 0 {
		s.buf = append(s.buf, p[:n]...)
		s.parse()
	}
	return n, err
}

func (s *sniffConn) parse() {
	if len(s.buf) < 4 {
		return
	}
	size := int(binary.BigEndian.Uint32(s.buf[:4]))
	if size < 20 || size > 4096 {
		s.done, s.buf = true, nil
		return
	}
	if len(s.buf) < 4+size {
		return
	}
	body := s.buf[4 : 4+size]
	// protocolVersion int32, timeOut int32, sessionId int64, passwd buffer.
	id := int64(binary.BigEndian.Uint64(body[8:16]))
	plen := int(int32(binary.BigEndian.Uint32(body[16:20])))
	if id != 0 && plen >= 0 && 20+plen <= len(body) {
		s.rec.mu.Lock()
		s.rec.creds[id] = append([]byte(nil), body[20:20+plen]...)
		s.rec.mu.Unlock()
	}
	s.done, s.buf = true, nil
}

// SameACL fails t unless got (a node's ACL as the server reports it) is
// want, in any order. The server shows a digest id as "user:x" to readers
// without admin rights on the node, so digest ids compare by user.
func SameACL(t testing.TB, want, got []zk.ACL) {
	t.Helper()
	key := func(as []zk.ACL) map[string]int {
		m := map[string]int{}
		for _, a := range as {
			id := a.ID
			if a.Scheme == "digest" {
				id, _, _ = strings.Cut(id, ":")
			}
			m[fmt.Sprintf("%s:%s:%d", a.Scheme, id, a.Perms)]++
		}
		return m
	}
	w, g := key(want), key(got)
	if fmt.Sprint(w) != fmt.Sprint(g) {
		t.Fatalf("zktest: ACL %v, want %v", got, want)
	}
}

// Mkdirs creates path and its missing ancestors as persistent nodes (open
// to all) with conn, and fails t if it cannot.
func Mkdirs(t testing.TB, conn *zk.Conn, path string) {
	t.Helper()
	for i := 1; i <= len(path); i++ {
		if i == len(path) || path[i] == '/' {
			_, err := conn.Create(path[:i], nil, 0, zk.WorldACL(zk.PermAll))
			if err != nil && !errors.Is(err, zk.ErrNodeExists) {
				t.Fatalf("create %s: %v", path[:i], err)
			}
		}
	}
}
