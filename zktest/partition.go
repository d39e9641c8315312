package zktest

import (
	"slices"
	"testing"
)

// Isolate partitions server i from the other servers of the ensemble: every
// link between it and another server (quorum and election ports, both
// directions) is blackholed, so its existing peer connections stay open but
// carry nothing and new ones go nowhere. Clients are left alone: their
// connections to server i keep working at the TCP level, and the server
// itself, without a quorum, stops serving them (it closes their connections
// and refuses requests until it rejoins); use a Proxy to cut clients.
// Isolating several servers accumulates. Heal undoes it.
//
// Isolate needs a cluster started with Config.PeerProxies; it fails the test
// otherwise, and on a shared cluster. Skips the test for external ensembles.
func (c *Cluster) Isolate(t testing.TB, i int) {
	t.Helper()
	c.control(t, i)
	if c.links == nil {
		t.Fatalf("zktest: Isolate needs an ensemble started with Config{PeerProxies: true}")
	}
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	if c.isolated == nil {
		c.isolated = make(map[int]bool)
	}
	c.isolated[i] = true
	for j := range c.links {
		if j != i {
			c.links[i][j].set(Blackhole)
			c.links[j][i].set(Blackhole)
		}
	}
}

// IsolateLeader waits for a leader among the servers that are not isolated,
// isolates it (see Isolate) and returns its index.
func (c *Cluster) IsolateLeader(t testing.TB) int {
	t.Helper()
	c.control(t, 0)
	leader := c.WaitLeader(t)
	c.Isolate(t, leader)
	return leader
}

// Heal reconnects all servers: every peer link passes traffic again. Links
// that were blackholed have their connections reset (their streams lost
// bytes), and the servers reconnect. Heal does not wait for the ensemble to
// form; call WaitQuorum for that. It is a no-op without Config.PeerProxies.
func (c *Cluster) Heal(t testing.TB) {
	t.Helper()
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	for _, row := range c.links {
		for _, l := range row {
			if l != nil {
				l.set(Pass)
			}
		}
	}
	c.isolated = nil
}

// Isolated returns the indexes of the servers isolated now, in order.
func (c *Cluster) Isolated() []int {
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	var out []int
	for i := range c.isolated {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

func (c *Cluster) isIsolated(i int) bool {
	c.linkMu.Lock()
	defer c.linkMu.Unlock()
	return c.isolated[i]
}
