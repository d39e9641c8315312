//go:build !linux

package wire

import "net"

// socket is the raw-system-call path of Linux (socket_linux.go); elsewhere
// a connection goes through its own Read and Write.
type socket struct{}

func newSocket(net.Conn) *socket { return nil }

func (*socket) Read([]byte) (int, error)  { panic("wire: no raw socket on this platform") }
func (*socket) Write([]byte) (int, error) { panic("wire: no raw socket on this platform") }

// Socket returns nc: raw system calls are for Linux.
func Socket(nc net.Conn) net.Conn { return nc }
