// Package zktest starts real Apache ZooKeeper servers for Go tests and injects
// faults into them: killed, restarted and paused servers, network partitions
// of clients through a TCP proxy and of servers from each other (peer
// proxies), and real server-side session expiry.
//
// # Getting ZooKeeper
//
// zktest launches the Java server directly (no service scripts). It looks for
// the jars in this order:
//
//   - $ZOOKEEPER_HOME/lib/*.jar (an Apache release tarball), if ZOOKEEPER_HOME is set;
//   - /usr/share/java/zookeeper.jar and friends (Debian/Ubuntu: sudo apt-get install zookeeper).
//
// Java is taken from $JAVA_HOME/bin/java, else from PATH. Instead of launching
// servers, tests can use an existing ensemble: set
// ZKTEST_SERVERS=host:port,host:port,... (the 4lw commands should be whitelisted
// there; fault methods that need process control then skip the test).
//
// When nothing is found the test is skipped with instructions; set
// ZKTEST_REQUIRE=1 (as CI does) to make that a failure instead. Set
// ZKTEST_KEEP=1 to keep server directories and logs even for passing tests
// (they are always kept, and their path logged, when a test fails).
//
// # Usage
//
//	func TestSomething(t *testing.T) {
//		zkc := zktest.Start(t)          // one standalone server, stopped by t.Cleanup
//		sess := zkc.Session(t)          // *recipes.Session, 2 s session timeout, closed by t.Cleanup
//		root := zktest.Root(t)          // "/zktest/TestSomething-1a2b3c4d"
//		obs := zkc.Conn(t)              // raw *zk.Conn for observing
//		...
//	}
//
// A 3-node ensemble, a partition and an expiry:
//
//	zkc := zktest.StartCluster(t, zktest.Config{Servers: 3})
//	p := zkc.Proxy(t)
//	sess := p.Session(t)            // connects through the proxy
//	p.Set(zktest.Blackhole)         // partition the client
//	...
//	p.Set(zktest.Pass)              // heal (partitioned connections are reset)
//	zkc.Expire(t, sess)             // expire the session on the server now
//	old := zkc.KillLeader(t)        // SIGKILL the leader
//	zkc.WaitQuorum(t)
//	zkc.Restart(t, old)
//
// Partitions between servers, on loopback (no network namespaces needed):
// with Config.PeerProxies every server reaches each other server through a
// proxy per link and port, and Isolate blackholes all links of one server:
//
//	zkc := zktest.StartCluster(t, zktest.Config{Servers: 3, PeerProxies: true})
//	old := zkc.IsolateLeader(t)     // the other two elect a new leader
//	...
//	zkc.Heal(t)                     // links pass again (blackholed ones are reset)
//	zkc.WaitQuorum(t)               // old has rejoined as a follower
//
// A follower cut off from the leader keeps answering its own clients until
// it has heard nothing from the leader for syncLimit·tickTime, while the
// leader expires their sessions after their timeout. To see what a client
// of such a follower believes, make that window longer than the session
// timeout and keep the client on the follower:
//
//	zkc := zktest.StartCluster(t, zktest.Config{Servers: 3, PeerProxies: true,
//		SyncLimit: 20})                // 20 × 200ms: 4 s
//	f := zkc.Followers()[0]
//	sess := zkc.ServerSession(t, f, recipes.WithSessionTimeout(time.Second))
//	obs := zkc.ServerConn(t, zkc.Leader()) // the leader's view
//	zkc.Isolate(t, f)
//
// The election proxies rewrite the header a server sends when it opens an
// election connection to its pre-3.6 form (the id alone, without its
// address): the receiver of a connection from a smaller id connects back to
// the address in the header, which would bypass the proxies.
//
// # Sharing servers
//
// Starting a JVM costs about a second (an ensemble about three). Tests of one
// package that do not disturb the servers can share them:
//
//	func TestMain(m *testing.M) { zktest.Main(m) } // stops shared servers at exit
//
// or, under a goroutine leak check that must run after the servers stop:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Wrap(m)) }
//
// Both skip the package when no ZooKeeper is installed, unless
// ZKTEST_REQUIRE=1. WaitUntil and ClosedWithin bound the waits of a test.
//
//	func TestA(t *testing.T) {
//		zkc := zktest.Shared(t, zktest.Config{})
//		root := zktest.Root(t) // keep tests apart with unique roots
//		...
//	}
//
// Shared starts one cluster per Config per test process, lazily, and reuses it.
// Tests that kill, restart or pause servers must use their own cluster (Start
// or StartCluster); the process-control methods fail on a shared cluster. Using
// a Proxy or Expire on a shared cluster is fine: they only affect the test's own
// connections and sessions. Without zktest.Main (or a call to Cleanup at the end
// of TestMain) the JVMs still die with the test process on Linux (they are
// started with a parent-death signal), but their temporary directories remain.
//
// # Server configuration
//
// Launched servers listen on 127.0.0.1 on free ports, with tickTime=200ms
// (Config.TickTime), initLimit=10 and syncLimit=5 ticks (Config.InitLimit,
// Config.SyncLimit), minSessionTimeout=2·tickTime, maxSessionTimeout=60s
// (or 20·tickTime if longer), forceSync=no (Config.ForceSync), no limit on
// connections per client address (maxClientCnxns=0), all 4lw commands
// whitelisted and no admin server. Empty container nodes are reaped about
// every second (Config.ContainerCheck; the server default is a minute).
// Each server's output goes to server.log in its directory.
//
// Server indexes (Kill, Restart, Pause, ...) are 0-based positions in Addrs.
package zktest
