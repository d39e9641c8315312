package zktest

import (
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// FourLetterTimeout bounds each FourLetter call (dial, write and read).
const FourLetterTimeout = 2 * time.Second

// FourLetter sends a ZooKeeper four-letter-word command ("ruok", "srvr",
// "cons", "mntr", ...) to addr and returns the whole reply. The server must
// whitelist the command (servers launched by zktest whitelist all of them).
func FourLetter(addr, cmd string) (string, error) {
	deadline := time.Now().Add(FourLetterTimeout)
	c, err := net.DialTimeout("tcp", addr, FourLetterTimeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := io.WriteString(c, cmd); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return string(b), fmt.Errorf("zktest: %s to %s: %w", cmd, addr, err)
	}
	return string(b), nil
}

// serverMode asks addr for its mode with srvr: "leader", "follower",
// "standalone", "observer", or "" if the server does not serve requests
// (no quorum yet, or the command is not whitelisted).
func serverMode(addr string) (string, error) {
	out, err := FourLetter(addr, "srvr")
	if err != nil {
		return "", err
	}
	return parseMode(out), nil
}

func fourLetterDisabled(reply string) bool {
	return strings.Contains(reply, "not in the whitelist") || strings.Contains(reply, "not executed")
}
