package zktest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// server is one launched ZooKeeper JVM.
type server struct {
	myid       int // 1-based
	dir        string
	cfgPath    string
	logPath    string
	clientAddr string
	secureAddr string // with Config.TLS
	inst       *installation
	// containerCheck is znode.container.checkIntervalMs (Config.ContainerCheck).
	containerCheck time.Duration

	mu      sync.Mutex
	pid     int
	running bool // started and not yet reaped
	paused  bool
	status  string // exit status of the last reaped process
}

// pickPorts returns n distinct free TCP ports on 127.0.0.1. Another process
// may take one before the server binds it; startCluster retries then.
func pickPorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeConfigs creates cfg.Servers server directories under base with
// zoo.cfg and myid. cfg must be normalized.
// With peer non-nil, it is called once per ordered pair of servers (i ≠ j)
// with j's real quorum and election addresses and returns the addresses
// server i's zoo.cfg gives for j (its proxies); each server's own line keeps
// its real addresses, which it binds.
func writeConfigs(base string, cfg Config, inst *installation, peer func(i, j int, quorum, election string) (string, string, error), ca *CA) ([]*server, error) {
	n := cfg.Servers
	ports, err := pickPorts(4 * n) // client, quorum, election, secure client
	if err != nil {
		return nil, err
	}
	tickMs := int(cfg.TickTime / time.Millisecond)
	if tickMs < 1 {
		tickMs = 1
	}
	real := func(i int) (string, string) {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i+1])),
			net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i+2]))
	}
	// quorum returns the server.N lines of server i's zoo.cfg.
	quorum := func(i int) (string, error) {
		var b strings.Builder
		if n == 1 {
			return "", nil
		}
		for j := 0; j < n; j++ {
			q, e := real(j)
			if peer != nil && j != i {
				var err error
				if q, e, err = peer(i, j, q, e); err != nil {
					return "", err
				}
			}
			fmt.Fprintf(&b, "server.%d=%s:%s\n", j+1, q, portOf(e))
		}
		return b.String(), nil
	}
	maxSession := 60000
	if 20*tickMs > maxSession {
		maxSession = 20 * tickMs
	}
	servers := make([]*server, n)
	for i := 0; i < n; i++ {
		s := &server{
			myid:           i + 1,
			dir:            filepath.Join(base, fmt.Sprintf("server%d", i+1)),
			clientAddr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[3*i])),
			inst:           inst,
			containerCheck: cfg.ContainerCheck,
		}
		s.cfgPath = filepath.Join(s.dir, "zoo.cfg")
		s.logPath = filepath.Join(s.dir, "server.log")
		dataDir := filepath.Join(s.dir, "data")
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, err
		}
		lines, err := quorum(i)
		if err != nil {
			return nil, err
		}
		if ca != nil {
			secure := ports[3*n+i]
			s.secureAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(secure))
			ks, ts, err := ca.writeServerStores(s.dir)
			if err != nil {
				return nil, err
			}
			lines += tlsConfigLines(secure, ks, ts)
		}
		zooCfg := fmt.Sprintf(`# written by zktest
tickTime=%d
initLimit=%d
syncLimit=%d
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
forceSync=%s
maxClientCnxns=0
minSessionTimeout=%d
maxSessionTimeout=%d
4lw.commands.whitelist=*
admin.enableServer=false
%s`, tickMs, cfg.InitLimit, cfg.SyncLimit, dataDir, ports[3*i], forceSync(cfg), 2*tickMs, maxSession, lines)
		if err := os.WriteFile(s.cfgPath, []byte(zooCfg), 0o644); err != nil {
			return nil, err
		}
		if n > 1 {
			if err := os.WriteFile(filepath.Join(dataDir, "myid"), []byte(strconv.Itoa(i+1)+"\n"), 0o644); err != nil {
				return nil, err
			}
		}
		servers[i] = s
	}
	return servers, nil
}

// portOf returns the port of "host:port".
func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// start launches the JVM. The log file is appended to across restarts.
func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return fmt.Errorf("server %d is already running", s.myid)
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==== zktest: starting server %d at %s ====\n", s.myid, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(s.inst.java,
		"-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
		"-Djava.net.preferIPv4Stack=true",
		"-Dzookeeper.jmx.log4j.disable=true",
		// Reap empty container nodes every Config.ContainerCheck (a
		// second by default, not a minute), so that recipes meet vanishing
		// parents in tests.
		fmt.Sprintf("-Dznode.container.checkIntervalMs=%d", s.containerCheck.Milliseconds()),
		"-cp", s.inst.classpath,
		"org.apache.zookeeper.server.quorum.QuorumPeerMain", s.cfgPath)
	cmd.Dir = s.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("zktest: starting %s: %w", s.inst.java, err)
	}
	s.pid = cmd.Process.Pid
	// From here on the pid is signalled and reaped by proc_unix.go.
	_ = cmd.Process.Release()
	s.running = true
	s.paused = false
	s.status = ""
	return nil
}

// alive reaps the process if it exited and reports whether it still runs.
func (s *server) pollLocked() {
	if !s.running {
		return
	}
	if exited, status, err := reapPid(s.pid, false); err == nil && exited {
		s.running = false
		s.paused = false
		s.status = status
	}
}

// kill sends SIGKILL and waits for the process to exit.
func (s *server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pollLocked()
	if !s.running {
		return
	}
	_ = signalPid(s.pid, sigCont)
	_ = signalPid(s.pid, sigKill)
	_, status, _ := reapPid(s.pid, true)
	s.running = false
	s.paused = false
	s.status = status
}

func (s *server) setPaused(p bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pollLocked()
	if !s.running {
		return fmt.Errorf("server %d is not running (%s)", s.myid, s.status)
	}
	sig := sigStop
	if !p {
		sig = sigCont
	}
	if err := signalPid(s.pid, sig); err != nil {
		return err
	}
	s.paused = p
	return nil
}

func (s *server) state() (running, paused bool, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pollLocked()
	return s.running, s.paused, s.status
}

// logTail returns the last n lines of the server log.
func (s *server) logTail(n int) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", s.logPath, err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

func (s *server) logContains(sub string) bool {
	b, err := os.ReadFile(s.logPath)
	return err == nil && bytes.Contains(b, []byte(sub))
}

// forceSync is zoo.cfg's forceSync value for cfg.
func forceSync(cfg Config) string {
	if cfg.ForceSync {
		return "yes"
	}
	return "no"
}
