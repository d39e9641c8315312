//go:build !linux

package wire

import "net"

// Socket returns nc: raw socket calls (socket_linux.go) are for Linux;
// elsewhere a connection goes through its own Read and Write.
func Socket(nc net.Conn) net.Conn { return nc }
