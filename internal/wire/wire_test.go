package wire

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func frame(body []byte) []byte {
	b := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(b, uint32(len(body)))
	copy(b[4:], body)
	return b
}

func connectResponse(session int64, timeoutMs int32, passwd []byte) []byte {
	b := make([]byte, 20+len(passwd))
	binary.BigEndian.PutUint32(b[4:], uint32(timeoutMs))
	binary.BigEndian.PutUint64(b[8:], uint64(session))
	binary.BigEndian.PutUint32(b[16:], uint32(len(passwd)))
	copy(b[20:], passwd)
	return b
}

func replyHeader(xid int32, zxid int64, errCode int32, body []byte) []byte {
	b := make([]byte, 16+len(body))
	binary.BigEndian.PutUint32(b, uint32(xid))
	binary.BigEndian.PutUint64(b[4:], uint64(zxid))
	binary.BigEndian.PutUint32(b[12:], uint32(errCode))
	copy(b[16:], body)
	return b
}

func request(xid, op int32) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b, uint32(xid))
	binary.BigEndian.PutUint32(b[4:], uint32(op))
	return frame(b)
}

func pathBody(p string) []byte {
	b := make([]byte, 4+len(p))
	binary.BigEndian.PutUint32(b, uint32(len(p)))
	copy(b[4:], p)
	return b
}

// TestObserver feeds a client/server exchange through the observer, with
// the server's bytes arriving in awkward pieces, and checks what it reports.
func TestObserver(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	var (
		hs       []Handshake
		answered []Answer
		created  []string
		zxids    []int64
		sessions []int64
	)
	d := &Dialer{
		Dial: func(string, string, time.Duration) (net.Conn, error) { return client, nil },
		Hooks: Hooks{
			Handshake: func(h Handshake) { hs = append(hs, h) },
			Answered:  func(a Answer) { answered = append(answered, a) },
			Created: func(p string, zxid, s int64) {
				created, zxids, sessions = append(created, p), append(zxids, zxid), append(sessions, s)
			},
			Track: func(p string) bool { return p != "/untracked" },
		},
	}
	c, err := d.DialContext("tcp", "x", time.Second)
	require.NoError(t, err)

	out := make(chan []byte, 16)
	go func() { // the server side: read whatever the client writes
		buf := make([]byte, 1024)
		for {
			n, err := server.Read(buf)
			if err != nil {
				close(out)
				return
			}
			out <- append([]byte(nil), buf[:n]...)
		}
	}()
	write := func(b []byte) {
		_, err := c.Write(b)
		require.NoError(t, err)
		<-out
	}
	write(frame(make([]byte, 44))) // connect request
	write(request(1, 1))           // create
	write(request(-2, 11))         // ping
	write(request(2, 1))           // create of an untracked path
	stream := append(frame(connectResponse(0x1234, 4000, []byte("0123456789abcdef"))),
		frame(replyHeader(-1, -1, 0, []byte("watch event")))...) // a notification: no request answered
	stream = append(stream, frame(replyHeader(1, 0x100000007, 0, pathBody("/a/_c_x-lock-0000000001")))...)
	stream = append(stream, frame(replyHeader(-2, 0, 0, nil))...)
	stream = append(stream, frame(replyHeader(2, 0x100000008, 0, pathBody("/untracked")))...)
	go func() {
		for i := 0; i < len(stream); i += 3 { // 3-byte pieces cut through every field
			server.Write(stream[i:min(i+3, len(stream))])
		}
	}()
	buf := make([]byte, 7)
	for got := 0; got < len(stream); {
		n, err := c.Read(buf)
		require.NoError(t, err)
		got += n
	}
	require.Len(t, hs, 1)
	require.Equal(t, int64(0x1234), hs[0].SessionID)
	require.Equal(t, 4*time.Second, hs[0].Timeout)
	require.Equal(t, "0123456789abcdef", string(hs[0].Password))
	require.Len(t, answered, 3, "create, ping, create; the notification answers nothing")
	require.Equal(t, []int32{1, OpPing, 1}, []int32{answered[0].Op, answered[1].Op, answered[2].Op})
	for _, a := range answered {
		require.Zero(t, a.Err)
		require.NotZero(t, a.Sent)
		require.GreaterOrEqual(t, a.Received, a.Sent)
	}
	require.Equal(t, []string{"/a/_c_x-lock-0000000001"}, created)
	require.Equal(t, []int64{0x100000007}, zxids)
	require.Equal(t, []int64{0x1234}, sessions)
	require.NoError(t, c.Close())
	d.CloseAll() // idempotent with Close
}

func TestHandshakeClamp(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	d := &Dialer{
		Dial:             func(string, string, time.Duration) (net.Conn, error) { return client, nil },
		HandshakeTimeout: 100 * time.Millisecond,
	}
	c, err := d.DialContext("tcp", "x", time.Second)
	require.NoError(t, err)
	go server.Read(make([]byte, 64))
	_, err = c.Write(frame(make([]byte, 44)))
	require.NoError(t, err)
	// go-zookeeper asks for 10·recvTimeout; the clamp makes it 100 ms.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Minute)))
	start := time.Now()
	_, err = c.Read(make([]byte, 4))
	require.Error(t, err)
	require.Less(t, time.Since(start), 5*time.Second)
	c.Close()
}

// With QuietPings a ping is dropped while the connection wrote a sync less
// than a ping interval (a third of the negotiated timeout) before, and
// goes out otherwise: before any sync, and once the interval has passed.
func TestQuietPings(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	d := &Dialer{
		Dial:       func(string, string, time.Duration) (net.Conn, error) { return client, nil },
		QuietPings: true,
	}
	c, err := d.DialContext("tcp", "x", time.Second)
	require.NoError(t, err)
	defer c.Close()

	frames := make(chan []byte, 16) // what reaches the server, frame by frame
	go func() {
		defer close(frames)
		for {
			var n [4]byte
			if _, err := io.ReadFull(server, n[:]); err != nil {
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(n[:]))
			if _, err := io.ReadFull(server, body); err != nil {
				return
			}
			frames <- body
		}
	}()
	opOf := func(body []byte) int32 { return int32(binary.BigEndian.Uint32(body[4:8])) }
	sent := func(b []byte) {
		t.Helper()
		n, err := c.Write(b)
		require.NoError(t, err)
		require.Equal(t, len(b), n)
	}
	arrives := func(op int32) {
		t.Helper()
		select {
		case body := <-frames:
			require.Equal(t, op, opOf(body))
		case <-time.After(5 * time.Second):
			t.Fatalf("opcode %d did not reach the server", op)
		}
	}

	sent(frame(make([]byte, 44))) // connect request
	<-frames
	// A 30 ms session: go-zookeeper would ping every 10 ms.
	go server.Write(frame(connectResponse(0x1234, 30, []byte("0123456789abcdef"))))
	_, err = c.Read(make([]byte, 64))
	require.NoError(t, err)

	sent(request(-2, OpPing)) // no sync yet: it goes out
	arrives(OpPing)
	sent(request(1, OpSync))
	arrives(OpSync)
	sent(request(-2, OpPing)) // right after the sync: dropped (Write returned without the server reading)
	sent(request(2, 3))       // the next frame the server sees is this exists, not the ping
	arrives(3)
	// Once a ping interval has passed since the sync, a ping goes out again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		sent(request(-2, OpPing))
		select {
		case body := <-frames:
			require.Equal(t, OpPing, opOf(body))
			return
		case <-time.After(20 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "no ping went out after the interval")
	}
}

// countingConn counts the reads that reach the socket.
type countingConn struct {
	net.Conn
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.Conn.Read(p)
}

// The read-ahead buffer serves go-zookeeper's two reads of a frame (its
// length, then its body) from one read of the socket, a body larger than
// the buffer intact, and the socket's error only after the bytes that came
// before it.
func TestReadAhead(t *testing.T) {
	client, server := net.Pipe()
	sock := &countingConn{Conn: client}
	var answered []int32
	d := &Dialer{
		Dial:  func(string, string, time.Duration) (net.Conn, error) { return sock, nil },
		Hooks: Hooks{Answered: func(a Answer) { answered = append(answered, a.Op) }},
	}
	c, err := d.DialContext("tcp", "x", time.Second)
	require.NoError(t, err)
	defer c.Close()
	go io.Copy(io.Discard, server)
	for _, req := range [][]byte{frame(make([]byte, 44)), request(1, 3), request(2, 8)} {
		_, err := c.Write(req)
		require.NoError(t, err)
	}

	big := make([]byte, 3*readAhead) // a children list larger than the buffer
	for i := range big {
		big[i] = byte(i)
	}
	small := frame(replyHeader(1, 7, 0, []byte("exists")))
	large := frame(replyHeader(2, 8, 0, big))
	stream := append(frame(connectResponse(0x1234, 4000, nil)), small...)
	stream = append(stream, large...)
	go func() {
		server.Write(stream) // net.Pipe hands it over in pieces as large as each read
		server.Close()
	}()

	readFrame := func() []byte { // as go-zookeeper's recvLoop reads
		t.Helper()
		var n [4]byte
		_, err := io.ReadFull(c, n[:])
		require.NoError(t, err)
		body := make([]byte, binary.BigEndian.Uint32(n[:]))
		_, err = io.ReadFull(c, body)
		require.NoError(t, err)
		return body
	}
	readFrame() // the connect response
	require.Equal(t, 1, sock.reads, "the connect response's two reads took one socket read")
	require.Equal(t, small[4:], readFrame())
	require.Equal(t, 1, sock.reads, "the next frame came in the same socket read")
	require.Equal(t, large[4:], readFrame())
	require.Equal(t, []int32{3, 8}, answered)
	_, err = c.Read(make([]byte, 4))
	require.ErrorIs(t, err, io.EOF, "the socket's end comes after its bytes")
}

// A deadline cleared after a read is cleared on the socket before the next
// read: that read waits for its bytes however late they come. One set and
// not cleared still ends a read that gets nothing.
func TestClearedDeadline(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	d := &Dialer{Dial: func(string, string, time.Duration) (net.Conn, error) { return client, nil }}
	c, err := d.DialContext("tcp", "x", time.Second)
	require.NoError(t, err)
	defer c.Close()
	go io.Copy(io.Discard, server)
	_, err = c.Write(frame(make([]byte, 44)))
	require.NoError(t, err)
	go server.Write(frame(connectResponse(0x1234, 4000, nil)))
	_, err = c.Read(make([]byte, 64))
	require.NoError(t, err)

	for _, set := range []func(time.Time) error{c.SetReadDeadline, c.SetDeadline} {
		require.NoError(t, set(time.Now().Add(20*time.Millisecond)))
		require.NoError(t, set(time.Time{}))
		late := make(chan struct{})
		go func() {
			<-late
			server.Write([]byte("late"))
		}()
		got := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 4))
			got <- err
		}()
		select {
		case err := <-got:
			t.Fatalf("read returned %v before any bytes came: the cleared deadline was kept", err)
		case <-time.After(200 * time.Millisecond): // ten times the old deadline
		}
		close(late)
		require.NoError(t, <-got)
	}

	require.NoError(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err = c.Read(make([]byte, 4))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "a deadline set and not cleared ends the read: %v", err)
	// A cleared write deadline does not fail the next write either.
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(-time.Second)))
	require.NoError(t, c.SetWriteDeadline(time.Time{}))
	_, err = c.Write(request(1, 3))
	require.NoError(t, err)
}
