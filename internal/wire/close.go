package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// OpCloseSession is the opcode of a close-session request.
const OpCloseSession int32 = -11

const errSessionExpired = -112

// ErrSessionOver is returned by CloseSession when the server says the
// session is over already (expired, or closed).
var ErrSessionOver = errors.New("the server says the session is over already")

// CloseSession ends session id on the server at addr, on a connection of
// its own: a connect request with the session's id and password, then a
// close request. It returns nil once the server answered the close, or
// ErrSessionOver if the server said the session is over already. ctx
// bounds it.
//
// A client that gave up on a session (its local deadline passed, or Close
// raced with a broken connection) uses it so that the server frees the
// session's ephemeral nodes at once rather than when it expires.
func CloseSession(ctx context.Context, dial func(network, address string, timeout time.Duration) (net.Conn, error), addr string, id int64, passwd []byte) error {
	if dial == nil {
		dial = net.DialTimeout
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return context.DeadlineExceeded
	}
	conn, err := dial("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	req := make([]byte, 0, 64)
	req = binary.BigEndian.AppendUint32(req, 0)          // protocolVersion
	req = binary.BigEndian.AppendUint64(req, 0)          // lastZxidSeen
	req = binary.BigEndian.AppendUint32(req, 0)          // timeOut: the server clamps it to its minimum, so a close that gets lost now leaves the session less time
	req = binary.BigEndian.AppendUint64(req, uint64(id)) // sessionId
	req = binary.BigEndian.AppendUint32(req, uint32(len(passwd)))
	req = append(req, passwd...)
	if err := writeFrame(conn, req); err != nil {
		return err
	}
	resp, err := readFrame(conn)
	if err != nil {
		return fmt.Errorf("connect response: %w", err)
	}
	h, ok := parseConnectResponse(resp)
	switch {
	case !ok:
		return fmt.Errorf("short connect response (%d bytes)", len(resp))
	case h.SessionID == 0:
		return ErrSessionOver
	case h.SessionID != id:
		return fmt.Errorf("server gave session 0x%x, want 0x%x", h.SessionID, id)
	}
	hdr := binary.BigEndian.AppendUint32(nil, 1) // xid
	op := OpCloseSession
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(op))
	if err := writeFrame(conn, hdr); err != nil {
		return err
	}
	for {
		reply, err := readFrame(conn)
		if err != nil {
			return fmt.Errorf("close reply: %w", err)
		}
		if len(reply) < 16 {
			return fmt.Errorf("short reply (%d bytes)", len(reply))
		}
		if xid := int32(binary.BigEndian.Uint32(reply[:4])); xid != 1 {
			continue // a watch notification or a ping reply
		}
		switch code := int32(binary.BigEndian.Uint32(reply[12:16])); code {
		case 0:
			return nil
		case errSessionExpired:
			return ErrSessionOver
		default:
			return fmt.Errorf("close: server error %d", code)
		}
	}
}

func writeFrame(w io.Writer, body []byte) error {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	_, err := w.Write(append(b, body...))
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > 1<<20 {
		return nil, errors.New("frame too large")
	}
	b := make([]byte, size)
	_, err := io.ReadFull(r, b)
	return b, err
}
