//go:build linux

package wire

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// socket reads and writes a plain TCP connection with raw system calls,
// waiting in Go's network poller as net.Conn does, so deadlines and Close
// work as they do there.
//
// Why: a Go program whose goroutines all wait on the network puts the
// runtime's monitor thread (sysmon) to sleep, and the next system call made
// the usual way (syscall.Read, through entersyscall) wakes it: a futex
// wake-up, the monitor's short sleeps, and its futex sleep again, with two
// context switches, on every reply of every request of an otherwise idle
// client. The monitor's job during a system call is to take its processor
// back should the call block; a read or write of a non-blocking socket
// never blocks, so it has nothing to do. go-zookeeper's receive loop, the
// one reader, and its send loop, the one writer, then leave it asleep.
//
// A connection that is not a *net.TCPConn (TLS, a test's pipe, a caller's
// own dialer's wrapper) gets no socket and goes through its own Read and
// Write.
type socket struct {
	rc           syscall.RawConn
	network      string
	laddr, raddr net.Addr

	rmu    sync.Mutex // one read at a time: rb, rn, rerrno are its state
	rb     []byte
	rn     int
	rerrno syscall.Errno
	readFn func(fd uintptr) bool

	wmu     sync.Mutex // one write at a time: wb, wn, werrno are its state
	wb      []byte
	wn      int
	werrno  syscall.Errno
	writeFn func(fd uintptr) bool
}

// newSocket returns nc's socket, or nil when nc is not a plain TCP
// connection.
func newSocket(nc net.Conn) *socket {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil || !nonBlocking(rc) {
		return nil
	}
	s := &socket{rc: rc, network: tc.LocalAddr().Network(), laddr: tc.LocalAddr(), raddr: tc.RemoteAddr()}
	// Method values made once: a closure per call would be an allocation.
	s.readFn, s.writeFn = s.tryRead, s.tryWrite
	return s
}

// nonBlocking reports whether rc's descriptor is in non-blocking mode, as
// Go's poller keeps it. A caller's dialer may have made it blocking (the
// old idiom of tc.File().Fd() does): a raw read of it could then block its
// thread without the runtime knowing, so such a connection keeps net's
// own Read and Write.
func nonBlocking(rc syscall.RawConn) bool {
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
		return false
	}
	return flags&unix.O_NONBLOCK != 0
}

// Read reads into b as net.Conn's Read does: io.EOF when the peer closed,
// errors as *net.OpError (a passed deadline is a timeout).
func (s *socket) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.rb, s.rn, s.rerrno = b, 0, 0
	err := s.rc.Read(s.readFn)
	n := s.rn
	s.rb = nil
	switch {
	case err != nil:
		return 0, s.opError("read", err)
	case s.rerrno != 0:
		return 0, s.opError("read", os.NewSyscallError("read", s.rerrno))
	case n == 0:
		return 0, io.EOF
	}
	raceRead(b[:n])
	return n, nil
}

// tryRead makes one read of the non-blocking socket; false means it had
// nothing yet, and the poller waits for it.
func (s *socket) tryRead(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&s.rb[0])), uintptr(len(s.rb)))
		switch e {
		case 0:
			s.rn = int(n)
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.rerrno = e
			return true
		}
	}
}

// Write writes all of b, as net.Conn's Write does.
func (s *socket) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wb, s.wn, s.werrno = b, 0, 0
	raceWriteStart()
	err := s.rc.Write(s.writeFn)
	n := s.wn
	s.wb = nil
	raceWritten(b[:n])
	switch {
	case err != nil:
		return n, s.opError("write", err)
	case s.werrno != 0:
		return n, s.opError("write", os.NewSyscallError("write", s.werrno))
	}
	return n, nil
}

// tryWrite writes what is left of the write until the socket's buffer is
// full (false: the poller waits for room) or all is written.
func (s *socket) tryWrite(fd uintptr) bool {
	for s.wn < len(s.wb) {
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&s.wb[s.wn])), uintptr(len(s.wb)-s.wn))
		switch e {
		case 0:
			s.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.werrno = e
			return true
		}
	}
	return true
}

// opError wraps err as net.Conn's methods do. The raw connection's own
// errors (a passed deadline, a closed connection) come wrapped as a
// "raw-read" or "raw-write" *net.OpError: the cause is kept, the wrapping
// made the usual one.
func (s *socket) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: s.network, Source: s.laddr, Addr: s.raddr, Err: err}
}

// Socket returns nc with its Read and Write made raw system calls (see
// socket) when it is a plain TCP connection, and nc itself otherwise. The
// Dialer wraps every connection it dials so, and a TLS client the TCP
// connection beneath it.
func Socket(nc net.Conn) net.Conn {
	if s := newSocket(nc); s != nil {
		return &socketConn{Conn: nc, sock: s}
	}
	return nc
}

// socketConn is a net.Conn whose reads and writes go through its socket.
type socketConn struct {
	net.Conn
	sock *socket
}

func (c *socketConn) Read(b []byte) (int, error)  { return c.sock.Read(b) }
func (c *socketConn) Write(b []byte) (int, error) { return c.sock.Write(b) }
