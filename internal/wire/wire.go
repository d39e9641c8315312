// Package wire watches the bytes of a go-zookeeper connection so a Session can
// know what go-zookeeper keeps to itself: when the server last answered one of
// our requests (and when that request was sent), the session id, timeout and
// password of each handshake, and a bound on how long a handshake may take.
//
// go-zookeeper writes one whole frame per Write call (the connect request,
// then a request header and body, or a ping) and reads replies in order, so
// a small frame parser on the read side can pair each reply with the send
// time of its request.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/clock"
)

// Handshake is what a ZooKeeper server answered to a connect request.
type Handshake struct {
	SessionID int64         // 0 when the server refused the session (expired)
	Timeout   time.Duration // negotiated session timeout
	Password  []byte
	Sent      clock.Instant // when the connect request was written
}

// Answer is a reply to one of our requests.
type Answer struct {
	Sent     clock.Instant // when the request was written
	Received clock.Instant // when its reply was read
	Op       int32         // the request's opcode (OpPing, OpSync, ...)
	Err      int32         // the reply header's error code (0: ok)
}

// Opcodes of the requests Answer reports.
const (
	OpPing int32 = 11
	OpSync int32 = 9
)

// Hooks are called from go-zookeeper's connection goroutines: they must not block.
type Hooks struct {
	// Handshake is called once per connection when the connect response arrives.
	Handshake func(Handshake)
	// Answered is called for each reply to one of our requests (pings
	// included).
	Answered func(Answer)
	// Created is called for each successful create (opcode 1) whose path
	// Track accepts, with the zxid of the reply header, which is the created
	// node's czxid (the server applies writes one at a time and stamps the
	// reply with the last applied zxid), and the session of the connection
	// the reply came on, which owns the node if it is ephemeral.
	Created func(path string, zxid, session int64)
	// Track selects the created paths reported to Created.
	Track func(path string) bool
	// Failed is called when an attempt to reach a server fails before its
	// handshake completed: the dial failed, or the connection broke or went
	// silent before the connect response arrived. It says why a session is
	// not being granted.
	Failed func(addr string, err error)
}

// Dialer dials server connections whose frames are observed by Hooks.
type Dialer struct {
	// Dial opens the TCP connection; net.DialTimeout when nil.
	Dial func(network, address string, timeout time.Duration) (net.Conn, error)
	// HandshakeTimeout bounds the connect handshake (read and write deadlines
	// are clamped to it) so a wedged server cannot hold the client for
	// go-zookeeper's 10·recvTimeout. Zero means no clamp.
	HandshakeTimeout time.Duration
	// QuietPings drops go-zookeeper's pings on a connection that wrote a
	// sync less than a ping interval ago (see conn.Write).
	QuietPings bool
	Hooks      Hooks

	mu    sync.Mutex
	conns map[*conn]struct{}
}

// DialContext is a go-zookeeper zk.Dialer.
func (d *Dialer) DialContext(network, address string, timeout time.Duration) (net.Conn, error) {
	dial := d.Dial
	if dial == nil {
		dial = net.DialTimeout
	}
	if d.HandshakeTimeout > 0 && d.HandshakeTimeout < timeout {
		timeout = d.HandshakeTimeout
	}
	nc, err := dial(network, address, timeout)
	if err != nil {
		d.failed(address, err)
		return nil, err
	}
	c := &conn{Conn: Socket(nc), d: d, addr: address}
	d.mu.Lock()
	if d.conns == nil {
		d.conns = make(map[*conn]struct{})
	}
	d.conns[c] = struct{}{}
	d.mu.Unlock()
	return c, nil
}

// CloseAll closes every connection this dialer opened that is still open.
// go-zookeeper then sees an error at once instead of waiting out a read
// deadline on a silent server.
func (d *Dialer) CloseAll() {
	d.mu.Lock()
	conns := make([]*conn, 0, len(d.conns))
	for c := range d.conns {
		conns = append(conns, c)
	}
	d.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Handshaking returns, for each open connection whose handshake was sent
// and not answered, its server address and how long ago it was sent.
func (d *Dialer) Handshaking() map[string]time.Duration {
	d.mu.Lock()
	conns := make([]*conn, 0, len(d.conns))
	for c := range d.conns {
		conns = append(conns, c)
	}
	d.mu.Unlock()
	out := make(map[string]time.Duration)
	now := time.Now()
	for _, c := range conns {
		c.mu.Lock()
		if !c.handshakeDone && !c.handshakeSent.IsZero() && !c.reported {
			out[c.addr] = now.Sub(c.handshakeSent)
		}
		c.mu.Unlock()
	}
	return out
}

func (d *Dialer) failed(addr string, err error) {
	if d.Hooks.Failed != nil {
		d.Hooks.Failed(addr, err)
	}
}

func (d *Dialer) forget(c *conn) {
	d.mu.Lock()
	delete(d.conns, c)
	d.mu.Unlock()
}

const (
	xidNotification = -1
	opCreate        = 1
	frameHeadMax    = 1024 // a reply header and a created path, or a connect response
)

// sent is one request we wrote.
type sent struct {
	xid    int32
	opcode int32
	at     clock.Instant
}

type conn struct {
	net.Conn
	d    *Dialer
	addr string

	closeOnce sync.Once

	// established is set once the handshake is done (deadlines are no
	// longer clamped); readClear and writeClear say that a deadline was
	// cleared and the socket not told yet (see SetDeadline).
	established           atomic.Bool
	readClear, writeClear atomic.Bool

	mu            sync.Mutex
	handshakeSent time.Time
	handshakeBoot clock.Instant // handshakeSent on the deadline clock
	handshakeDone bool
	reported      bool   // a failed handshake was reported to Hooks.Failed
	pending       []sent // requests awaiting a reply from next on, oldest first
	next          int
	session       int64         // granted by this connection's handshake
	pingEvery     time.Duration // go-zookeeper's ping interval, from the handshake
	lastSync      clock.Instant // when this connection last wrote a sync

	// read-ahead buffer (only touched by the single reader goroutine):
	// rbuf[rnext:] is yet to be served, rerr is the error the socket
	// returned with the last bytes buffered
	rbuf  []byte
	rnext int
	rerr  error

	// read-side frame parser (only touched by the single reader goroutine)
	lenBuf  [4]byte
	lenHave int
	bodyLen int
	bodyGot int
	head    []byte
}

// Write records each request's send time. With QuietPings it drops a ping
// when the connection wrote a sync less than a ping interval ago.
//
// go-zookeeper pings every third of the session timeout whatever else it
// sends, to keep the session touched and its own read deadline (two
// thirds of the timeout since the last reply) fed. A Session sends a sync
// more often than that (its proof interval is at most a fifth of the
// timeout), and a sync does both jobs: it touches the session and is
// answered. While syncs flow the pings only double the idle traffic, of
// every session, at the servers too. When a sync goes unanswered (the
// server we talk to lost the leader) the pings after it are dropped too,
// for a ping interval, so go-zookeeper's read deadline can pass: it then
// moves to another server, as the Session would want anyway (its local
// deadline cannot be proven through that server).
func (c *conn) Write(p []byte) (int, error) {
	boot := clock.Now()
	c.mu.Lock()
	switch {
	case c.handshakeSent.IsZero():
		c.handshakeSent, c.handshakeBoot = time.Now(), boot
	case len(p) >= 12:
		xid := int32(binary.BigEndian.Uint32(p[4:8]))
		op := int32(binary.BigEndian.Uint32(p[8:12]))
		switch {
		case op == OpSync:
			c.lastSync = boot
		case op == OpPing && c.d.QuietPings && c.lastSync != 0 && boot.Sub(c.lastSync) < c.pingEvery:
			c.mu.Unlock()
			return len(p), nil
		}
		c.pending = append(c.pending, sent{xid, op, boot})
	}
	c.mu.Unlock()
	if c.writeClear.Load() && c.writeClear.Swap(false) {
		_ = c.Conn.SetWriteDeadline(time.Time{})
	}
	return c.Conn.Write(p)
}

// Read serves go-zookeeper from a read-ahead buffer. go-zookeeper reads each
// frame in two calls, its 4-byte length and then its body, and each would
// be a system call of its own (and a third when the socket has nothing yet);
// one read of up to readAhead bytes usually brings a whole reply, often
// with the notification or the next reply behind it. Bytes are parsed as
// they come off the socket, so the hooks see a frame before go-zookeeper
// does. A read at least as large as the buffer (the rest of a big body)
// goes to the socket directly.
func (c *conn) Read(p []byte) (int, error) {
	if c.rnext < len(c.rbuf) {
		n := copy(p, c.rbuf[c.rnext:])
		c.rnext += n
		return n, nil
	}
	if err := c.rerr; err != nil {
		c.rerr = nil
		return 0, err
	}
	if len(p) >= readAhead {
		return c.fill(p)
	}
	if c.rbuf == nil {
		c.rbuf = make([]byte, 0, readAhead)
	}
	n, err := c.fill(c.rbuf[:readAhead])
	c.rbuf, c.rnext = c.rbuf[:n], 0
	if n == 0 {
		return 0, err
	}
	c.rerr = err // returned once the buffered bytes are served
	k := copy(p, c.rbuf)
	c.rnext = k
	return k, nil
}

// readAhead is the size of a connection's read-ahead buffer.
const readAhead = 4096

// fill reads from the socket into b and parses what came.
func (c *conn) fill(b []byte) (int, error) {
	if c.readClear.Load() && c.readClear.Swap(false) {
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
	n, err := c.Conn.Read(b)
	c.parse(b[:n])
	if err != nil {
		c.mu.Lock()
		report := !c.handshakeDone && !c.reported
		c.reported = true
		c.mu.Unlock()
		if report {
			c.d.failed(c.addr, handshakeError(err))
		}
	}
	return n, err
}

func (c *conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.d.forget(c)
		err = c.Conn.Close()
	})
	return err
}

// SetDeadline, SetReadDeadline and SetWriteDeadline clamp a deadline set
// during the handshake (see Dialer.HandshakeTimeout), and leave a cleared
// deadline to be cleared on the socket by the next read or write that
// reaches it. go-zookeeper sets a deadline before each frame it reads or
// writes and clears it after: the clear matters only to a later read or
// write, which almost always sets a deadline of its own first, so most
// clears never need to reach the socket (each is a timer update in Go's
// poller). go-zookeeper alone uses the connection, and clears a deadline
// from the goroutine that reads (or writes) after its read (or write)
// returned, so no read or write is pending when it does.
func (c *conn) SetDeadline(t time.Time) error {
	if t = c.clamp(t); t.IsZero() {
		c.readClear.Store(true)
		c.writeClear.Store(true)
		return nil
	}
	c.readClear.Store(false)
	c.writeClear.Store(false)
	return c.Conn.SetDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	if t = c.clamp(t); t.IsZero() {
		c.readClear.Store(true)
		return nil
	}
	c.readClear.Store(false)
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	if t = c.clamp(t); t.IsZero() {
		c.writeClear.Store(true)
		return nil
	}
	c.writeClear.Store(false)
	return c.Conn.SetWriteDeadline(t)
}

// clamp bounds deadlines set while the handshake is in progress.
func (c *conn) clamp(t time.Time) time.Time {
	if c.d.HandshakeTimeout <= 0 || c.established.Load() {
		return t
	}
	c.mu.Lock()
	done, sent := c.handshakeDone, c.handshakeSent
	c.mu.Unlock()
	if done {
		return t
	}
	start := sent
	if start.IsZero() {
		start = time.Now()
	}
	limit := start.Add(c.d.HandshakeTimeout)
	if t.IsZero() || t.After(limit) {
		return limit
	}
	return t
}

// parse feeds received bytes through the frame parser.
func (c *conn) parse(b []byte) {
	for len(b) > 0 {
		if c.lenHave < 4 {
			k := copy(c.lenBuf[c.lenHave:], b)
			c.lenHave += k
			b = b[k:]
			if c.lenHave == 4 {
				c.bodyLen = int(binary.BigEndian.Uint32(c.lenBuf[:]))
				c.bodyGot = 0
				c.head = c.head[:0]
				if c.bodyLen == 0 {
					c.frame()
				}
			}
			continue
		}
		k := min(len(b), c.bodyLen-c.bodyGot)
		if room := frameHeadMax - len(c.head); room > 0 {
			c.head = append(c.head, b[:min(k, room)]...)
		}
		c.bodyGot += k
		b = b[k:]
		if c.bodyGot == c.bodyLen {
			c.frame()
		}
	}
}

// frame handles one complete received frame whose first bytes are in c.head.
func (c *conn) frame() {
	c.lenHave = 0
	c.mu.Lock()
	if !c.handshakeDone {
		c.handshakeDone = true
		c.established.Store(true)
		at := c.handshakeBoot
		h, ok := parseConnectResponse(c.head)
		c.session = h.SessionID
		c.pingEvery = h.Timeout / 3 // go-zookeeper: recvTimeout/2, recvTimeout = 2/3 of the timeout
		c.mu.Unlock()
		if ok && c.d.Hooks.Handshake != nil {
			h.Sent = at
			c.d.Hooks.Handshake(h)
		}
		return
	}
	if len(c.head) < 16 {
		c.mu.Unlock()
		return
	}
	xid := int32(binary.BigEndian.Uint32(c.head[:4]))
	var req sent
	if xid != xidNotification {
		req = c.popPending(xid)
	}
	session := c.session
	c.mu.Unlock()
	if req.at == 0 {
		return
	}
	errCode := int32(binary.BigEndian.Uint32(c.head[12:16]))
	if c.d.Hooks.Answered != nil {
		c.d.Hooks.Answered(Answer{Sent: req.at, Received: clock.Now(), Op: req.opcode, Err: errCode})
	}
	if req.opcode == opCreate && c.d.Hooks.Created != nil {
		zxid := int64(binary.BigEndian.Uint64(c.head[4:12]))
		if errCode != 0 || len(c.head) < 20 {
			return
		}
		n := int(int32(binary.BigEndian.Uint32(c.head[16:20])))
		if n <= 0 || 20+n > len(c.head) {
			return
		}
		path := string(c.head[20 : 20+n])
		if c.d.Hooks.Track == nil || c.d.Hooks.Track(path) {
			c.d.Hooks.Created(path, zxid, session)
		}
	}
}

// popPending removes and returns the request that xid answers. Replies
// come in request order, so it is almost always the oldest; the queue's
// array is reused once it drains. Callers hold mu.
func (c *conn) popPending(xid int32) sent {
	live := c.pending[c.next:]
	for i, r := range live {
		if r.xid != xid {
			continue
		}
		if i == 0 {
			c.next++
		} else {
			copy(live[i:], live[i+1:])
			c.pending = c.pending[:len(c.pending)-1]
		}
		if c.next == len(c.pending) {
			c.pending, c.next = c.pending[:0], 0
		}
		return r
	}
	return sent{}
}

// parseConnectResponse decodes {protocolVersion int32, timeOut int32,
// sessionId int64, passwd buffer}.
func parseConnectResponse(b []byte) (Handshake, bool) {
	if len(b) < 20 {
		return Handshake{}, false
	}
	h := Handshake{
		Timeout:   time.Duration(int32(binary.BigEndian.Uint32(b[4:8]))) * time.Millisecond,
		SessionID: int64(binary.BigEndian.Uint64(b[8:16])),
	}
	n := int(int32(binary.BigEndian.Uint32(b[16:20])))
	if n > 0 && 20+n <= len(b) {
		h.Password = append([]byte(nil), b[20:20+n]...)
	}
	return h, true
}

// ErrNoHandshake is wrapped by the error reported to Hooks.Failed when a
// server accepted the TCP connection but the handshake did not complete.
var ErrNoHandshake = errors.New("no session handshake")

// handshakeError says what a read error during the handshake means.
func handshakeError(err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: the server did not answer in time: %w", ErrNoHandshake, err)
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("%w: the server closed the connection (not a ZooKeeper client port, a TLS-only port, or too many connections?): %w", ErrNoHandshake, err)
	}
	return fmt.Errorf("%w: %w", ErrNoHandshake, err)
}
