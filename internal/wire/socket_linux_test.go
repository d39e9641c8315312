//go:build linux

package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dialPair dials a loopback TCP listener through d and returns our end
// and the server's.
func dialPair(t *testing.T, d *Dialer) (*conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	nc, err := d.DialContext("tcp", ln.Addr().String(), time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	var srv net.Conn
	select {
	case srv = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener accepted nothing")
	}
	require.NotNil(t, srv)
	t.Cleanup(func() { srv.Close() })
	return nc.(*conn), srv.(*net.TCPConn)
}

// tcpPair is dialPair through a plain Dialer.
func tcpPair(t *testing.T) (*conn, *net.TCPConn) {
	t.Helper()
	c, srv := dialPair(t, &Dialer{})
	require.IsType(t, &socketConn{}, c.Conn, "a plain TCP connection is read and written through its raw socket")
	return c, srv
}

// Bytes written each way arrive intact, a write larger than the socket's
// buffers included (the writer waits in the poller for room), and the
// peer's close reads as io.EOF after its bytes.
func TestSocketCarriesBytes(t *testing.T) {
	c, srv := tcpPair(t)
	pattern := make([]byte, 251) // a prime length: no piece lines up with a buffer
	for i := range pattern {
		pattern[i] = byte(i)
	}
	big := bytes.Repeat(pattern, (8<<20)/len(pattern)) // larger than the kernel's socket buffers
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(srv, int64(len(big))))
		got <- b
	}()
	n, err := c.Write(big)
	require.NoError(t, err)
	require.Equal(t, len(big), n)
	select {
	case b := <-got:
		require.True(t, bytes.Equal(big, b), "the peer read other bytes than were written")
	case <-time.After(30 * time.Second):
		t.Fatal("the peer did not get the write")
	}

	go func() {
		srv.Write(big)
		srv.CloseWrite()
	}()
	var back bytes.Buffer
	buf := make([]byte, 3*readAhead)
	for {
		n, err := c.Read(buf)
		back.Write(buf[:n])
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
	}
	require.True(t, bytes.Equal(big, back.Bytes()), "read other bytes than the peer wrote")
}

// Deadlines end a read that gets nothing and a write that finds no room, as
// timeouts; Close ends a read in progress with net.ErrClosed.
func TestSocketDeadlinesAndClose(t *testing.T) {
	c, srv := tcpPair(t)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Millisecond)))
	_, err := c.Read(make([]byte, 16))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "a passed read deadline is a timeout: %v", err)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "as a plain TCP connection's")

	// The peer reads nothing: the write fills the buffers and then waits.
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(100*time.Millisecond)))
	_, err = c.Write(make([]byte, 64<<20))
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "a passed write deadline is a timeout: %v", err)
	require.NoError(t, c.SetDeadline(time.Time{}))

	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 16))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the read returned %v with nothing to read", err)
	case <-time.After(50 * time.Millisecond):
	}
	require.NoError(t, c.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, net.ErrClosed)
		var oe *net.OpError
		require.ErrorAs(t, err, &oe)
		require.Equal(t, "read", oe.Op)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the read")
	}
	_ = srv
}

// A connection the peer reset fails reads and writes with the errors a
// plain TCP connection gives (ECONNRESET, EPIPE), wrapped the same way,
// and the write's SIGPIPE does not end the process.
func TestSocketReset(t *testing.T) {
	c, srv := tcpPair(t)
	require.NoError(t, srv.SetLinger(0)) // close with a reset
	require.NoError(t, srv.Close())
	_, err := c.Read(make([]byte, 16))
	require.Error(t, err)
	var oe *net.OpError
	require.ErrorAs(t, err, &oe)
	require.Equal(t, "read", oe.Op)
	require.True(t, errors.Is(err, syscall.ECONNRESET), "want ECONNRESET, got %v", err)

	for range 100 { // the first write after a reset may still succeed
		if _, err = c.Write([]byte("after the reset")); err != nil {
			break
		}
	}
	require.Error(t, err)
	require.ErrorAs(t, err, &oe)
	require.Equal(t, "write", oe.Op)
	require.True(t, errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET), "want EPIPE or ECONNRESET, got %v", err)
}

// A connection that is not plain TCP has no raw socket: its own Read and
// Write are used (a TLS connection must see its bytes).
func TestSocketOnlyForTCP(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	d := &Dialer{Dial: func(string, string, time.Duration) (net.Conn, error) { return client, nil }}
	nc, err := d.DialContext("tcp", "x", time.Second)
	require.NoError(t, err)
	defer nc.Close()
	require.Equal(t, client, nc.(*conn).Conn)
}

// Socket gives a plain TCP connection raw reads and writes (for the TCP
// connection under a TLS client) and leaves any other connection as it is.
func TestSocketWrapper(t *testing.T) {
	c, srv := tcpPair(t)
	raw := Socket(c.Conn.(*socketConn).Conn) // the TCP connection itself
	require.IsType(t, &socketConn{}, raw)
	go srv.Write([]byte("from the server"))
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(raw, buf, len("from the server"))
	require.NoError(t, err)
	require.Equal(t, "from the server", string(buf[:n]))
	_, err = raw.Write([]byte("from the client"))
	require.NoError(t, err)
	n, err = io.ReadAtLeast(srv, buf, len("from the client"))
	require.NoError(t, err)
	require.Equal(t, "from the client", string(buf[:n]))

	client, server := net.Pipe()
	defer server.Close()
	defer client.Close()
	require.Equal(t, client, Socket(client))
}

// A TCP connection whose descriptor a caller's dialer made blocking (the
// old idiom of taking its File's Fd) gets no raw socket: a raw read of it would
// block its thread unseen by the runtime. Its own Read and Write serve.
func TestSocketNotForBlockingDescriptor(t *testing.T) {
	d := &Dialer{Dial: func(network, addr string, timeout time.Duration) (net.Conn, error) {
		nc, err := net.DialTimeout(network, addr, timeout)
		if err != nil {
			return nil, err
		}
		f, err := nc.(*net.TCPConn).File()
		if err != nil {
			nc.Close()
			return nil, err
		}
		_ = f.Fd() // makes the descriptor, shared with nc's, blocking
		t.Cleanup(func() { f.Close() })
		return nc, nil
	}}
	c, srv := dialPair(t, d)
	_, raw := c.Conn.(*socketConn)
	require.False(t, raw, "a blocking descriptor must not be read raw")
	go srv.Write([]byte("still served"))
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(c, buf, len("still served"))
	require.NoError(t, err)
	require.Equal(t, "still served", string(buf[:n]))
}
