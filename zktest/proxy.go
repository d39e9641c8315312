package zktest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// Mode is what a Proxy does with traffic.
type Mode int

const (
	// Pass forwards everything (the default).
	Pass Mode = iota
	// Reset closes every connection with a TCP RST and resets new ones as
	// soon as they are accepted: the servers look down.
	Reset
	// Blackhole keeps connections open but silently discards all bytes in
	// both directions, also on connections accepted meanwhile (a network
	// partition). Leaving Blackhole resets the affected connections: their
	// streams lost bytes.
	Blackhole
	// DropReplies forwards client→server bytes and discards server→client
	// bytes: requests take effect, their replies are lost. Leaving
	// DropReplies resets the affected connections.
	DropReplies
	// Hang stops forwarding in both directions without losing anything:
	// bytes wait in the proxy and the kernel buffers. Leaving Hang
	// delivers them; connections are not reset.
	Hang
)

func (m Mode) String() string {
	switch m {
	case Pass:
		return "Pass"
	case Reset:
		return "Reset"
	case Blackhole:
		return "Blackhole"
	case DropReplies:
		return "DropReplies"
	case Hang:
		return "Hang"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Request opcodes, for Proxy.DropNextReply.
const (
	OpCreate          int32 = 1
	OpDelete          int32 = 2
	OpExists          int32 = 3
	OpGetData         int32 = 4
	OpSetData         int32 = 5
	OpGetChildren2    int32 = 12
	OpSync            int32 = 9
	OpPing            int32 = 11
	OpMulti           int32 = 14
	OpCreate2         int32 = 15
	OpCreateContainer int32 = 19
	OpCreateTTL       int32 = 21
)

// ErrCodeSessionExpired is the reply error code of zk.ErrSessionExpired,
// for Proxy.FailNextReply.
const ErrCodeSessionExpired int32 = -112

// CreateOps are the opcodes of all requests that create a node.
var CreateOps = []int32{OpCreate, OpCreate2, OpCreateContainer, OpCreateTTL, OpMulti}

// Proxy is a TCP proxy in front of a cluster with one listener per server.
// Clients connected through it can be partitioned, reset, made to lose
// replies or have one refused. It is closed, and all its goroutines
// waited for, by t.Cleanup.
type Proxy struct {
	tick    time.Duration                           // the cluster's tickTime, for Session; 0 when unknown
	withTLS func([]recipes.Option) []recipes.Option // the cluster's TLS, for Session
	targets []string
	ls      []net.Listener
	addrs   []string
	wg      sync.WaitGroup

	mu      sync.Mutex
	mode    Mode
	changed chan struct{} // closed and replaced on every mode change
	conns   map[*proxyConn]struct{}
	closed  bool
	fault   *replyFault
	sent    map[int32]int // requests from clients, by opcode

	// peer makes a proxy for a link between two servers (Config.PeerProxies):
	// bytes are copied as they come (the quorum protocols are not
	// length-prefixed frames) and, for election links, electionHeader
	// rewrites the connection header (see rewriteElectionHeader).
	peer           bool
	electionHeader bool
}

type replyFault struct {
	ops  []int32 // empty: any request
	code int32   // 0: drop the reply and reset; else the error code it gets
	done chan struct{}
}

// Proxy starts a proxy in front of the cluster's servers.
func (c *Cluster) Proxy(t testing.TB) *Proxy {
	t.Helper()
	p, err := NewProxy(c.Addrs())
	if err != nil {
		t.Fatalf("zktest: %v", err)
	}
	p.tick = c.tick()
	p.withTLS = c.withTLS
	t.Cleanup(p.Close)
	return p
}

// NewProxy starts a proxy with one listener on 127.0.0.1 for each target
// address. The caller must Close it. Cluster.Proxy is the usual way.
func NewProxy(targets []string) (*Proxy, error) {
	p := &Proxy{
		targets: append([]string(nil), targets...),
		changed: make(chan struct{}),
		conns:   make(map[*proxyConn]struct{}),
	}
	for range targets {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			p.Close()
			return nil, err
		}
		p.ls = append(p.ls, l)
		p.addrs = append(p.addrs, l.Addr().String())
	}
	for i, l := range p.ls {
		p.wg.Add(1)
		go p.acceptLoop(l, p.targets[i])
	}
	return p, nil
}

// newPeerProxy starts a single-listener proxy for one server-to-server link.
func newPeerProxy(target string, election bool) (*Proxy, error) {
	p, err := NewProxy(nil)
	if err != nil {
		return nil, err
	}
	p.peer, p.electionHeader = true, election
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.Close()
		return nil, err
	}
	p.targets = []string{target}
	p.ls = []net.Listener{l}
	p.addrs = []string{l.Addr().String()}
	p.wg.Add(1)
	go p.acceptLoop(l, target)
	return p, nil
}

// Addrs returns the proxy's listen addresses, one per server.
func (p *Proxy) Addrs() []string { return append([]string(nil), p.addrs...) }

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Set switches the mode for existing and new connections. Setting Reset
// resets all current connections; leaving Blackhole or DropReplies resets
// all current connections too (they lost bytes, so their streams are
// corrupt). Hang→Pass resumes the streams intact.
func (p *Proxy) Set(m Mode) {
	p.mu.Lock()
	old := p.mode
	if old == m {
		p.mu.Unlock()
		return
	}
	p.mode = m
	close(p.changed)
	p.changed = make(chan struct{})
	var victims []*proxyConn
	if m == Reset || old == Blackhole || old == DropReplies {
		for pc := range p.conns {
			victims = append(victims, pc)
		}
	}
	p.mu.Unlock()
	for _, pc := range victims {
		pc.reset()
	}
}

// DropNextReply arms a one-shot fault: the next reply to a client request
// whose opcode is in ops (any request if ops is empty; pings and watch
// events never match) is discarded and that connection is reset at once, so
// the client sees a connection loss for a request that took effect on the
// server. The returned channel is closed when it happened. A second call
// replaces an armed one.
func (p *Proxy) DropNextReply(ops ...int32) <-chan struct{} {
	return p.arm(&replyFault{ops: append([]int32(nil), ops...), done: make(chan struct{})})
}

// FailNextReply arms a one-shot fault: the next reply to a client request
// whose opcode is in ops (any request if ops is empty; pings and watch
// events never match) reaches the client with its error code replaced by
// code and its body removed, the form in which a server refuses a request.
// The connection stays open. With code -112 (zk.ErrSessionExpired) it plays
// a follower that still serves a connection of a session the ensemble has
// already ended: the leader refuses the session's requests while the
// follower answers its pings. The returned channel is closed when it
// happened. It replaces an armed DropNextReply or FailNextReply. Code 0
// is DropNextReply.
func (p *Proxy) FailNextReply(code int32, ops ...int32) <-chan struct{} {
	return p.arm(&replyFault{ops: append([]int32(nil), ops...), code: code, done: make(chan struct{})})
}

// arm makes f the proxy's one armed reply fault, replacing any other.
func (p *Proxy) arm(f *replyFault) <-chan struct{} {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
	return f.done
}

// Requests returns how many requests with opcode op (OpPing, OpSync, ...)
// clients have sent through the proxy so far.
func (p *Proxy) Requests(op int32) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[op]
}

func (p *Proxy) count(op int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sent == nil {
		p.sent = make(map[int32]int)
	}
	p.sent[op]++
}

// Close stops the listeners, resets all connections and waits for the
// proxy's goroutines. It is idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return
	}
	p.closed = true
	var victims []*proxyConn
	for pc := range p.conns {
		victims = append(victims, pc)
	}
	p.mu.Unlock()
	for _, l := range p.ls {
		l.Close()
	}
	for _, pc := range victims {
		pc.reset()
	}
	p.wg.Wait()
}

// Conn opens a raw go-zookeeper connection through the proxy (see
// Cluster.Conn). With the proxy not in Pass mode it waits for the session
// until the test fails.
func (p *Proxy) Conn(t testing.TB, opts ...ConnOption) *zk.Conn {
	t.Helper()
	return dialConn(t, p.Addrs(), opts)
}

func (p *Proxy) state() (Mode, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.changed
}

func (p *Proxy) acceptLoop(l net.Listener, target string) {
	defer p.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		p.wg.Add(1)
		go p.handle(c, target)
	}
}

func resetConn(c net.Conn) {
	if c == nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *Proxy) handle(client net.Conn, target string) {
	defer p.wg.Done()
	mode, _ := p.state()
	if mode == Reset {
		resetConn(client)
		return
	}
	var server net.Conn
	if mode != Blackhole {
		var err error
		server, err = net.DialTimeout("tcp", target, 2*time.Second)
		if err != nil {
			resetConn(client)
			return
		}
	}
	pc := &proxyConn{p: p, client: client, server: server, done: make(chan struct{}), pending: make(map[int32]int32)}
	p.mu.Lock()
	// The mode may have changed while dialling; Set only resets registered
	// connections, so re-check under the lock.
	if p.closed || p.mode == Reset || (server == nil && p.mode != Blackhole) {
		p.mu.Unlock()
		resetConn(client)
		resetConn(server)
		return
	}
	p.conns[pc] = struct{}{}
	p.mu.Unlock()

	if server != nil {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); pc.pump(false) }()
	}
	pc.pump(true)
}

// proxyConn is one proxied client connection.
type proxyConn struct {
	p              *Proxy
	client, server net.Conn // server is nil for connections accepted in Blackhole
	once           sync.Once
	done           chan struct{}

	mu      sync.Mutex
	pending map[int32]int32 // xid -> opcode of requests awaiting a reply
}

func (pc *proxyConn) reset() {
	pc.once.Do(func() {
		close(pc.done)
		resetConn(pc.client)
		resetConn(pc.server)
		pc.p.mu.Lock()
		delete(pc.p.conns, pc)
		pc.p.mu.Unlock()
	})
}

// pump copies one direction frame by frame (ZooKeeper frames are
// length-prefixed), applying the proxy mode to each frame. A stream that does
// not look like ZooKeeper frames (a four-letter word) is copied in chunks.
func (pc *proxyConn) pump(fromClient bool) {
	defer pc.reset()
	src, dst := pc.server, pc.client
	if fromClient {
		src, dst = pc.client, pc.server
	}
	first, raw := true, pc.p.peer
	chunk := make([]byte, 32<<10)
	for {
		var msg []byte
		if first && fromClient && pc.p.electionHeader {
			var err error
			if msg, err = rewriteElectionHeader(src); err != nil {
				return
			}
		} else if raw {
			n, err := src.Read(chunk)
			if n == 0 && err != nil {
				return
			}
			msg = append([]byte(nil), chunk[:n]...)
		} else {
			var lb [4]byte
			if _, err := io.ReadFull(src, lb[:]); err != nil {
				return
			}
			n := int32(binary.BigEndian.Uint32(lb[:]))
			if n < 0 || n > maxFrame {
				raw = true
				msg = lb[:]
			} else {
				msg = make([]byte, 4+n)
				copy(msg, lb[:])
				if _, err := io.ReadFull(src, msg[4:]); err != nil {
					return
				}
			}
		}
		framed := !raw && !first
		first = false

		// Hang: hold the message until the mode changes.
		var mode Mode
		for {
			var changed <-chan struct{}
			mode, changed = pc.p.state()
			if mode != Hang {
				break
			}
			select {
			case <-changed:
			case <-pc.done:
				return
			}
		}

		if framed && len(msg) >= 12 {
			xid := int32(binary.BigEndian.Uint32(msg[4:8]))
			if fromClient {
				op := int32(binary.BigEndian.Uint32(msg[8:12]))
				pc.p.count(op)
				pc.notePending(xid, op)
			} else if d := pc.takeFault(xid); d != nil {
				if d.code == 0 {
					return // reset by the deferred pc.reset
				}
				msg = failedReply(msg, d.code)
			}
		}

		forward := false
		switch mode {
		case Pass:
			forward = true
		case DropReplies:
			forward = fromClient
		case Blackhole:
		case Reset:
			return
		}
		if forward {
			if dst == nil {
				return
			}
			if _, err := dst.Write(msg); err != nil {
				return
			}
		}
	}
}

// rewriteElectionHeader reads the header a ZooKeeper server sends when it
// opens a leader-election connection (protocol version, its id, its election
// address) and returns the pre-3.6 form of it: the id alone. The receiver of
// a connection from a smaller id drops it and connects back, to the address
// in the header if there is one, else to the address its own zoo.cfg gives;
// without the rewrite that connection back would bypass the receiver's proxy.
func rewriteElectionHeader(r io.Reader) ([]byte, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return nil, err
	}
	if int64(binary.BigEndian.Uint64(b[:])) >= 0 {
		return b[:], nil // already the old form: the id
	}
	var hdr [12]byte // id, length of the address
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(hdr[8:]))
	if n < 0 || n > 1<<16 {
		return nil, fmt.Errorf("zktest: election header with an address of %d bytes", n)
	}
	if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
		return nil, err
	}
	return append([]byte(nil), hdr[:8]...), nil
}

func (pc *proxyConn) notePending(xid, op int32) {
	if xid <= 0 {
		return // pings (-2), auth (-4), setWatches (-8)
	}
	pc.mu.Lock()
	if len(pc.pending) > 100000 {
		clear(pc.pending)
	}
	pc.pending[xid] = op
	pc.mu.Unlock()
}

// takeFault returns the armed DropNextReply or FailNextReply if the reply
// with xid must suffer it, disarming it.
func (pc *proxyConn) takeFault(xid int32) *replyFault {
	if xid <= 0 {
		return nil // watch events (-1), pings (-2), ...
	}
	pc.mu.Lock()
	op, known := pc.pending[xid]
	delete(pc.pending, xid)
	pc.mu.Unlock()
	pc.p.mu.Lock()
	defer pc.p.mu.Unlock()
	d := pc.p.fault
	if d == nil || !known || (len(d.ops) > 0 && !slices.Contains(d.ops, op)) {
		return nil
	}
	pc.p.fault = nil
	close(d.done)
	return d
}

// failedReply returns the reply frame msg (length, xid, zxid, error code,
// body) with its error code set to code and no body.
func failedReply(msg []byte, code int32) []byte {
	if len(msg) < 16 {
		return msg // not a reply frame
	}
	out := make([]byte, 20)
	binary.BigEndian.PutUint32(out[0:4], 16)
	copy(out[4:16], msg[4:16]) // xid, zxid
	binary.BigEndian.PutUint32(out[16:20], uint32(code))
	return out
}
