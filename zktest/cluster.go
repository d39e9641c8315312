package zktest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Config describes a cluster to launch.
type Config struct {
	// Servers is the number of servers: 0 or 1 starts a standalone server,
	// more start an ensemble.
	Servers int
	// TickTime is ZooKeeper's tickTime (default 200ms). The servers accept
	// session timeouts from 2·TickTime up to 60 s (20·TickTime if longer).
	TickTime time.Duration
	// SyncLimit is ZooKeeper's syncLimit, in ticks (default 5): a follower
	// that hears nothing from its leader for SyncLimit·TickTime gives up on
	// it and stops serving its clients, and a leader that hears from no
	// quorum of followers for as long steps down. Until then a follower cut
	// off from the leader still answers its clients' pings and reads by
	// itself, while the leader expires their sessions after their timeout.
	// Make SyncLimit·TickTime longer than a session timeout to test what a
	// client of such a follower believes.
	SyncLimit int
	// InitLimit is ZooKeeper's initLimit, in ticks (default 10): how long a
	// follower may take to connect to a new leader and sync with it.
	InitLimit int
	// PeerProxies routes the traffic between the servers of an ensemble
	// through zktest proxies, one per ordered pair of servers and port
	// (quorum and election), so that Isolate can partition a server from the
	// others on loopback, without network namespaces. Each server's zoo.cfg
	// gives the other servers' proxy addresses and its own real ones.
	PeerProxies bool
	// TLS gives every server a TLS-only secure client port (Netty), with a
	// certificate from a CA made for the cluster (Cluster.TLS): Addrs
	// returns those ports, and Session connects over TLS. Client
	// certificates the CA signed authenticate as x509:<subject> (the x509
	// ACL scheme). zktest's own tools (Conn, Expire) use a plain port.
	TLS bool
	// ForceSync makes every server fsync its transaction log before it
	// acknowledges a write (ZooKeeper's forceSync=yes, its production
	// default). zktest's default is forceSync=no: tests do not need the
	// durability and run faster without it. Benchmarks that compare
	// latencies with production set it.
	ForceSync bool
	// ContainerCheck is how often the servers reap empty container nodes
	// (znode.container.checkIntervalMs): zktest's default is a second, so
	// that recipes meet vanishing parents in tests; the server's own
	// default, for production, is a minute. Benchmarks that compare with
	// clients whose lock parents are persistent set the server's default.
	ContainerCheck time.Duration
}

func (cfg Config) normalized() Config {
	if cfg.Servers < 1 {
		cfg.Servers = 1
	}
	if cfg.TickTime <= 0 {
		cfg.TickTime = 200 * time.Millisecond
	}
	if cfg.SyncLimit <= 0 {
		cfg.SyncLimit = defaultSyncLimit
	}
	if cfg.InitLimit <= 0 {
		cfg.InitLimit = defaultInitLimit
	}
	if cfg.ContainerCheck <= 0 {
		cfg.ContainerCheck = time.Second
	}
	return cfg
}

// Defaults of Config.SyncLimit and Config.InitLimit.
const (
	defaultSyncLimit = 5
	defaultInitLimit = 10
)

const (
	startTimeout  = 60 * time.Second // JVMs are slow when many test packages run at once
	quorumTimeout = 60 * time.Second
	pollTick      = 50 * time.Millisecond
)

// Cluster is a running ZooKeeper ensemble (or standalone server), launched by
// zktest or external (ZKTEST_SERVERS). Its methods are safe for concurrent use.
type Cluster struct {
	cfg      Config
	addrs    []string // the plain client ports, for zktest's own tools
	secure   []string // with Config.TLS: the TLS ports (what Addrs returns)
	ca       *CA
	external bool
	shared   bool
	dir      string
	servers  []*server // nil when external

	// links[i][j] carries server i's connections to server j (nil without
	// Config.PeerProxies, and for i == j).
	links    [][]*peerLink
	isolated map[int]bool
	linkMu   sync.Mutex
}

// peerLink is the pair of proxies server i reaches server j through.
type peerLink struct {
	quorum, election *Proxy
}

func (l *peerLink) set(m Mode) {
	l.quorum.Set(m)
	l.election.Set(m)
}

// Start launches one standalone server for the test. It is killed, and its
// directory removed (kept and logged if the test failed), by t.Cleanup.
// See the package documentation for ZKTEST_SERVERS and skipping.
func Start(t testing.TB) *Cluster {
	t.Helper()
	return StartCluster(t, Config{})
}

// StartCluster launches the servers described by cfg for the test and waits
// until every server serves requests (for an ensemble: one leader, the others
// followers). The servers are killed by t.Cleanup. With ZKTEST_SERVERS set it
// returns the external ensemble instead (cfg is then ignored).
func StartCluster(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	if ext := externalServers(); len(ext) > 0 {
		return startExternal(t, ext)
	}
	inst := requireInstallation(t)
	c, err := launch(cfg.normalized(), inst)
	if err != nil {
		t.Fatalf("zktest: %v", err)
	}
	t.Cleanup(func() {
		c.stop()
		c.disposeDir(t.Failed(), t.Logf)
	})
	return c
}

func startExternal(t testing.TB, addrs []string) *Cluster {
	t.Helper()
	c := &Cluster{addrs: addrs, external: true}
	if err := waitFor(quorumTimeout, c.quorumStatus); err != nil {
		t.Fatalf("zktest: external ensemble %s=%s is not ready: %v", EnvServers, strings.Join(addrs, ","), err)
	}
	return c
}

// launch starts a cluster, retrying with fresh ports when a server could not
// bind its ports (another process took them between pickPorts and the bind).
func launch(cfg Config, inst *installation) (*Cluster, error) {
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		dir, err := os.MkdirTemp("", "zktest-")
		if err != nil {
			return nil, err
		}
		c := &Cluster{cfg: cfg, dir: dir}
		if cfg.TLS {
			if c.ca, err = NewCA("zktest-ca"); err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
		}
		var peer func(i, j int, q, e string) (string, string, error)
		if cfg.PeerProxies && cfg.Servers > 1 {
			c.links = make([][]*peerLink, cfg.Servers)
			for i := range c.links {
				c.links[i] = make([]*peerLink, cfg.Servers)
			}
			peer = func(i, j int, q, e string) (string, string, error) {
				l := &peerLink{}
				c.links[i][j] = l
				var err error
				if l.quorum, err = newPeerProxy(q, false); err != nil {
					return "", "", err
				}
				if l.election, err = newPeerProxy(e, true); err != nil {
					return "", "", err
				}
				return l.quorum.addrs[0], l.election.addrs[0], nil
			}
		}
		c.servers, err = writeConfigs(dir, cfg, inst, peer, c.ca)
		if err != nil {
			c.closeLinks()
			os.RemoveAll(dir)
			return nil, err
		}
		for _, s := range c.servers {
			c.addrs = append(c.addrs, s.clientAddr)
			if s.secureAddr != "" {
				c.secure = append(c.secure, s.secureAddr)
			}
		}
		for _, s := range c.servers {
			if err = s.start(); err != nil {
				break
			}
		}
		if err == nil {
			err = waitFor(startTimeout, func() (bool, string, error) {
				for i, s := range c.servers {
					if running, _, status := s.state(); !running {
						return false, "", fmt.Errorf("server %d (%s) exited during startup: %s", i, s.clientAddr, status)
					}
				}
				return c.quorumStatus()
			})
		}
		if err == nil {
			return c, nil
		}
		c.stop()
		bindFailure := false
		var tails strings.Builder
		for i, s := range c.servers {
			if s.logContains("Address already in use") {
				bindFailure = true
			}
			fmt.Fprintf(&tails, "\n--- server %d log (%s), last lines:\n%s", i, s.logPath, s.logTail(25))
		}
		lastErr = fmt.Errorf("starting %d server(s) in %s: %v%s", cfg.Servers, dir, err, tails.String())
		if !bindFailure {
			break // keep dir for diagnosis
		}
		os.RemoveAll(dir)
	}
	return nil, lastErr
}

// stop kills all servers, waits for them to exit and closes the peer proxies.
func (c *Cluster) stop() {
	var wg sync.WaitGroup
	for _, s := range c.servers {
		wg.Add(1)
		go func() { defer wg.Done(); s.kill() }()
	}
	wg.Wait()
	c.closeLinks()
}

func (c *Cluster) closeLinks() {
	for _, row := range c.links {
		for _, l := range row {
			if l == nil {
				continue
			}
			if l.quorum != nil {
				l.quorum.Close()
			}
			if l.election != nil {
				l.election.Close()
			}
		}
	}
}

func (c *Cluster) disposeDir(failed bool, logf func(string, ...any)) {
	if c.dir == "" {
		return
	}
	if failed || envTrue(EnvKeep) {
		if failed {
			for i, s := range c.servers {
				logf("zktest: server %d log %s, last lines:\n%s", i, s.logPath, s.logTail(20))
			}
		}
		logf("zktest: server directories and logs kept in %s", c.dir)
		return
	}
	os.RemoveAll(c.dir)
}

// waitFor polls cond every pollTick until it reports true, returns an error,
// or timeout passes.
func waitFor(timeout time.Duration, cond func() (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, desc, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v: %s", timeout, desc)
		}
		time.Sleep(pollTick)
	}
}

// quorumStatus reports whether the live (running, not paused) servers form a
// serving cluster: a standalone server serves, or exactly one leader, every
// other live server a follower or observer, and a majority of all servers
// following or leading.
func (c *Cluster) quorumStatus() (bool, string, error) {
	n := len(c.addrs)
	var modes []string
	leaders, members := 0, 0
	allServing := true
	for i, addr := range c.addrs {
		if !c.external {
			running, paused, _ := c.servers[i].state()
			if !running || paused {
				modes = append(modes, fmt.Sprintf("%d:down", i))
				continue
			}
			if c.isIsolated(i) {
				modes = append(modes, fmt.Sprintf("%d:isolated", i))
				continue
			}
		}
		out, err := FourLetter(addr, "srvr")
		if err != nil {
			modes = append(modes, fmt.Sprintf("%d:%v", i, err))
			allServing = false
			continue
		}
		if c.external && fourLetterDisabled(out) {
			// Cannot observe modes; a reachable server is all we can check.
			modes = append(modes, fmt.Sprintf("%d:reachable", i))
			members++
			if n == 1 || i == 0 {
				leaders++
			}
			continue
		}
		mode := parseMode(out)
		modes = append(modes, fmt.Sprintf("%d:%s", i, orDash(mode)))
		switch mode {
		case "standalone":
			leaders++
			members++
		case "leader":
			leaders++
			members++
		case "follower", "observer":
			members++
		default:
			allServing = false
		}
	}
	desc := "modes " + strings.Join(modes, " ")
	ok := allServing && leaders == 1 && members > n/2
	return ok, desc, nil
}

func parseMode(srvr string) string {
	for _, line := range strings.Split(srvr, "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(line), "Mode:"); ok {
			return strings.TrimSpace(m)
		}
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "not-serving"
	}
	return s
}

// Addrs returns the client addresses ("host:port"), one per server, in
// server index order.
func (c *Cluster) Addrs() []string {
	if c.secure != nil {
		return append([]string(nil), c.secure...)
	}
	return append([]string(nil), c.addrs...)
}

// External reports whether the cluster is an external ensemble (ZKTEST_SERVERS).
func (c *Cluster) External() bool { return c.external }

// LogPath returns the log file of launched server i ("" for external clusters).
func (c *Cluster) LogPath(i int) string {
	if c.external || i < 0 || i >= len(c.servers) {
		return ""
	}
	return c.servers[i].logPath
}

// Leader returns the index of the server that reports "Mode: leader" (or
// "standalone") to the srvr command, or -1 if there is none right now.
// Stopped, paused and isolated (Isolate) servers are not asked.
func (c *Cluster) Leader() int {
	for i, addr := range c.addrs {
		if !c.external {
			if running, paused, _ := c.servers[i].state(); !running || paused || c.isIsolated(i) {
				continue
			}
		}
		if m, err := serverMode(addr); err == nil && (m == "leader" || m == "standalone") {
			return i
		}
	}
	return -1
}

// Followers returns the indexes, in order, of the servers that report
// "Mode: follower" to the srvr command right now (none for a standalone
// server). Stopped, paused and isolated (Isolate) servers are not asked.
// A server isolated a moment ago may still call itself a follower (for up
// to SyncLimit·TickTime) but is left out.
func (c *Cluster) Followers() []int {
	var out []int
	for i, addr := range c.addrs {
		if !c.external {
			if running, paused, _ := c.servers[i].state(); !running || paused || c.isIsolated(i) {
				continue
			}
		}
		if m, err := serverMode(addr); err == nil && m == "follower" {
			out = append(out, i)
		}
	}
	return out
}

// WaitQuorum waits (up to 60 s) until the live servers form a serving
// cluster: one leader, the other running, unpaused and not isolated servers
// following, and a majority of the ensemble in it. It fails the test on
// timeout.
func (c *Cluster) WaitQuorum(t testing.TB) {
	t.Helper()
	if err := waitFor(quorumTimeout, c.quorumStatus); err != nil {
		t.Fatalf("zktest: no quorum: %v", err)
	}
}

// WaitLeader waits until some server is the leader and returns its index.
func (c *Cluster) WaitLeader(t testing.TB) int {
	t.Helper()
	leader := -1
	err := waitFor(quorumTimeout, func() (bool, string, error) {
		leader = c.Leader()
		return leader >= 0, "no server reports Mode: leader", nil
	})
	if err != nil {
		t.Fatalf("zktest: %v", err)
	}
	return leader
}

var errShared = errors.New("the cluster is shared (zktest.Shared); tests that kill, restart or pause servers must start their own with Start or StartCluster")

// control checks that server i can be controlled by this test.
func (c *Cluster) control(t testing.TB, i int) *server {
	t.Helper()
	if c.external {
		t.Skipf("zktest: this test needs process control of the servers, which an external ensemble (%s) does not give", EnvServers)
	}
	if c.shared {
		t.Fatalf("zktest: %v", errShared)
	}
	if i < 0 || i >= len(c.servers) {
		t.Fatalf("zktest: server index %d out of range [0,%d)", i, len(c.servers))
	}
	return c.servers[i]
}

// Kill sends SIGKILL to server i and waits for it to exit (a no-op if it is
// not running). Skips the test for external ensembles.
func (c *Cluster) Kill(t testing.TB, i int) {
	t.Helper()
	c.control(t, i).kill()
}

// KillLeader waits for a leader, kills it and returns its index.
func (c *Cluster) KillLeader(t testing.TB) int {
	t.Helper()
	c.control(t, 0)
	leader := c.WaitLeader(t)
	c.Kill(t, leader)
	return leader
}

// Restart starts the killed server i again with its data directory and
// configuration and waits until it answers ruok; if enough other servers run
// for a quorum, it also waits until it serves requests.
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	s := c.control(t, i)
	if err := s.start(); err != nil {
		t.Fatalf("zktest: restart server %d: %v", i, err)
	}
	err := waitFor(startTimeout, func() (bool, string, error) {
		if running, _, status := s.state(); !running {
			return false, "", fmt.Errorf("server %d exited: %s", i, status)
		}
		out, err := FourLetter(s.clientAddr, "ruok")
		if err != nil || out != "imok" {
			return false, fmt.Sprintf("ruok: %q %v", out, err), nil
		}
		live := 0
		for _, o := range c.servers {
			if running, paused, _ := o.state(); running && !paused {
				live++
			}
		}
		if live <= len(c.servers)/2 || c.isIsolated(i) {
			return true, "", nil // cannot serve without a quorum
		}
		m, err := serverMode(s.clientAddr)
		return m != "", fmt.Sprintf("mode %q %v", m, err), nil
	})
	if err != nil {
		t.Fatalf("zktest: restart server %d: %v\n--- log %s:\n%s", i, err, s.logPath, s.logTail(25))
	}
}

// Pause stops server i with SIGSTOP: its connections stay open but it does
// not answer. Cleanup resumes paused servers before killing them.
func (c *Cluster) Pause(t testing.TB, i int) {
	t.Helper()
	if err := c.control(t, i).setPaused(true); err != nil {
		t.Fatalf("zktest: pause server %d: %v", i, err)
	}
}

// Resume continues server i paused by Pause (SIGCONT).
func (c *Cluster) Resume(t testing.TB, i int) {
	t.Helper()
	if err := c.control(t, i).setPaused(false); err != nil {
		t.Fatalf("zktest: resume server %d: %v", i, err)
	}
}

// Running reports whether launched server i runs (paused counts as running).
func (c *Cluster) Running(i int) bool {
	if c.external || i < 0 || i >= len(c.servers) {
		return false
	}
	running, _, _ := c.servers[i].state()
	return running
}
