package zktest

import (
	"net"
	"sync"
	"testing"
)

// SilentServer listens on a loopback port, accepts every connection and
// never answers: a server that is up but wedged (or a port that is not
// ZooKeeper's and waits for its client to speak). It returns the address.
// The listener and the accepted connections are closed when the test ends.
func SilentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("zktest: silent server: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// ClosedPort returns a loopback address that nothing listens on: a
// connection to it is refused.
func ClosedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("zktest: closed port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
