package recipes

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/wire"
)

// WithTLS makes every connection to the ensemble TLS, configured by cfg:
// RootCAs to trust the servers' certificates (the system's when nil),
// Certificates for a client certificate (mutual TLS, and ZooKeeper's x509
// ACL scheme), MinVersion... When cfg.ServerName is empty, each server's
// host is the name its certificate must carry (an IP address works if the
// certificate lists it). Point the servers at their secureClientPort.
//
// The handshake is bounded by the connect timeout. A certificate the client
// does not accept (unknown authority, expired, wrong name), a server that
// does not speak TLS, or a server that rejects the client's certificate is
// a failed attempt whose cause Connect's error names; with WithFailFast,
// Connect gives up once every server failed so (ErrUnreachable).
// (With TLS 1.3 a server's rejection of the client certificate arrives
// after the client's handshake, as an alert on the first read: it counts
// as a failed handshake all the same.) go-zookeeper has
// no TLS of its own: the session's connection observer,
// its local deadline and the fencing tokens of create replies work over
// TLS as over TCP.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return fmt.Errorf("recipes: nil TLS config")
		}
		c.tls = cfg.Clone()
		return nil
	}
}

// tlsDialer wraps dial (net.DialTimeout when nil) with a TLS client
// handshake bounded by the dial timeout.
func tlsDialer(cfg *tls.Config, dial zk.Dialer) zk.Dialer {
	if dial == nil {
		dial = net.DialTimeout
	}
	return func(network, address string, timeout time.Duration) (net.Conn, error) {
		start := time.Now()
		nc, err := dial(network, address, timeout)
		if err != nil {
			return nil, err
		}
		c := cfg
		if c.ServerName == "" {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				nc.Close()
				return nil, err
			}
			c = cfg.Clone()
			c.ServerName = host
		}
		tc := tls.Client(wire.Socket(nc), c) // raw reads and writes under TLS too
		if timeout > 0 {
			tc.SetDeadline(start.Add(timeout))
		}
		if err := tc.Handshake(); err != nil {
			nc.Close()
			return nil, &tlsHandshakeError{address, err, clientCertProblem(c)}
		}
		tc.SetDeadline(time.Time{})
		if tc.ConnectionState().Version >= tls.VersionTLS13 {
			return &tls13Conn{Conn: tc, addr: address, ours: clientCertProblem(c)}, nil
		}
		return tc, nil
	}
}

// tls13Conn is a TLS 1.3 connection whose server may still refuse our
// client certificate. In TLS 1.3 the client's handshake ends before the
// server has checked the certificate; the server's verdict comes as an
// alert on the first read. An alert before any data is therefore a failed
// handshake (tlsHandshakeError), which WithFailFast counts and whose
// message says what is wrong with our certificate; later errors pass as
// they are.
type tls13Conn struct {
	*tls.Conn
	addr, ours string
	data       bool // a read returned data: the server accepted us
}

func (c *tls13Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.data = true
	}
	var op *net.OpError
	if err != nil && !c.data && errors.As(err, &op) && op.Op == "remote error" {
		err = &tlsHandshakeError{c.addr, err, c.ours}
	}
	return n, err
}

// tlsHandshakeError is a failed TLS handshake with a server.
type tlsHandshakeError struct {
	addr string
	err  error
	ours string // what is wrong with our client certificate, if anything
}

func (e *tlsHandshakeError) Error() string {
	return fmt.Sprintf("TLS handshake with %s: %v%s%s", e.addr, e.err, tlsHint(e.err), e.ours)
}

// clientCertProblem says, for an error message, when the client
// certificate cfg offers is outside its validity period: a server that
// rejects it only answers "bad" or "unknown certificate".
func clientCertProblem(cfg *tls.Config) string {
	if len(cfg.Certificates) == 0 || len(cfg.Certificates[0].Certificate) == 0 {
		return ""
	}
	leaf := cfg.Certificates[0].Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cfg.Certificates[0].Certificate[0]); err != nil {
			return ""
		}
	}
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Sprintf(" (our client certificate %q expired at %s)", leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Sprintf(" (our client certificate %q is not valid before %s)", leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return ""
}

func (e *tlsHandshakeError) Unwrap() error { return e.err }

// tlsHint says what a bare connection error during the handshake means.
func tlsHint(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return " (the server closed the connection: not a TLS port, or it rejected our certificate?)"
	}
	return ""
}

// tlsRefused reports whether err is a TLS failure that another attempt
// cannot cure: the server's certificate is not accepted, the server does
// not speak TLS, or it rejected ours. A handshake that timed out is not:
// the server may only be slow.
func tlsRefused(err error) bool {
	var (
		hs *tlsHandshakeError
		ne net.Error
	)
	return errors.As(err, &hs) && !(errors.As(err, &ne) && ne.Timeout())
}
