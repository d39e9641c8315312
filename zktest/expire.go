package zktest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/wire"
)

const expireTimeout = 10 * time.Second

// Expire ends sess's ZooKeeper session on the server now, as an expiry
// would: its ephemeral nodes are deleted and its watches dropped. The client
// learns about it when it next talks to the server (for go-zookeeper: when it
// reconnects). Expire returns once no server lists the session any more.
func (c *Cluster) Expire(t testing.TB, sess Expirable) {
	t.Helper()
	id, passwd := sess.Credentials()
	c.ExpireID(t, id, passwd)
}

// Expirable is a session whose credentials are known, such as a
// *recipes.Session.
type Expirable interface {
	Credentials() (id int64, password []byte)
}

// ExpireConn expires the session of a *zk.Conn made by Cluster.Conn or
// Proxy.Conn (zktest records the session password those connections receive).
func (c *Cluster) ExpireConn(t testing.TB, conn *zk.Conn) {
	t.Helper()
	id := conn.SessionID()
	passwd, ok := lookupCredentials(conn, id)
	if !ok {
		t.Fatalf("zktest: ExpireConn: no credentials recorded for session 0x%x (only connections from Cluster.Conn or Proxy.Conn are supported)", id)
	}
	c.ExpireID(t, id, passwd)
}

// ExpireID expires the session id (with its password) on the server: it
// connects to a server with the same session id and password, closes the
// session through that connection and waits until no server lists the
// session in "cons" (up to 10 s).
func (c *Cluster) ExpireID(t testing.TB, id int64, passwd []byte) {
	t.Helper()
	if err := c.TryExpireID(id, passwd); err != nil {
		t.Fatal(err)
	}
}

// TryExpireID is ExpireID returning an error instead of failing the test,
// for fault schedules that go on when an expiry cannot be confirmed (all
// servers down or cut off, say). Servers isolated from the others are not
// asked whether they still list the session: they cannot know it expired.
func (c *Cluster) TryExpireID(id int64, passwd []byte) error {
	if id == 0 {
		return fmt.Errorf("zktest: ExpireID: session id 0")
	}
	var errs []string
	done := false
	for _, addr := range c.liveAddrs() {
		err := closeSession(addr, id, passwd)
		if err == nil {
			done = true
			break
		}
		errs = append(errs, fmt.Sprintf("%s: %v", addr, err))
	}
	if !done {
		return fmt.Errorf("zktest: expire session 0x%x: %s", id, strings.Join(errs, "; "))
	}
	isolated := map[string]bool{}
	if !c.external {
		for _, i := range c.Isolated() {
			isolated[c.addrs[i]] = true
		}
	}
	needle := fmt.Sprintf("sid=0x%x,", uint64(id))
	err := waitFor(expireTimeout, func() (bool, string, error) {
		for _, addr := range c.liveAddrs() {
			if isolated[addr] {
				continue
			}
			out, err := FourLetter(addr, "cons")
			if err != nil {
				return false, fmt.Sprintf("cons %s: %v", addr, err), nil
			}
			if fourLetterDisabled(out) {
				continue // cannot observe; the close reply must do
			}
			if strings.Contains(out, needle) {
				return false, fmt.Sprintf("%s still lists session 0x%x", addr, id), nil
			}
		}
		return true, "", nil
	})
	if err != nil {
		return fmt.Errorf("zktest: expire session 0x%x: %v", id, err)
	}
	return nil
}

// liveAddrs returns the addresses of running, unpaused servers.
func (c *Cluster) liveAddrs() []string {
	if c.external {
		return c.addrs
	}
	var out []string
	for i, s := range c.servers {
		if running, paused, _ := s.state(); running && !paused {
			out = append(out, c.addrs[i])
		}
	}
	return out
}

// closeSession attaches to the session on a connection of its own and
// closes it (wire.CloseSession, which the library uses to end a session it
// gave up on). A session that is already gone counts as success.
func closeSession(addr string, id int64, passwd []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := wire.CloseSession(ctx, nil, addr, id, passwd)
	if errors.Is(err, wire.ErrSessionOver) {
		return nil // already expired (or wrong password; the cons check will tell)
	}
	return err
}

const maxFrame = 64 << 20
