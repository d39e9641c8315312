package zktest

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

type sharedEntry struct {
	once sync.Once
	c    *Cluster
	err  error
}

var shared struct {
	mu       sync.Mutex
	clusters map[Config]*sharedEntry
	external *sharedEntry
	failed   bool // some test using a shared cluster failed: keep the logs
}

// Shared returns a cluster shared by all tests of this test process that ask
// for the same cfg. It is started on first use and stopped by Main or
// Cleanup at the end of the process. Tests must not kill, restart or pause
// its servers (those methods fail the test); use unique paths (Root) to keep
// tests apart. Shared is safe to call from parallel tests.
func Shared(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	if len(externalServers()) == 0 {
		requireInstallation(t)
	}
	c, err := sharedCluster(cfg)
	if err != nil {
		t.Fatalf("zktest: shared cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() && c.dir != "" {
			shared.mu.Lock()
			shared.failed = true
			shared.mu.Unlock()
			t.Logf("zktest: shared cluster logs are in %s (kept at exit because a test failed)", c.dir)
		}
	})
	return c
}

// ExampleServers returns the addresses of the shared standalone server (as
// Shared(t, Config{}) would), for runnable Examples, which have no
// testing.TB: it panics if the server cannot be started. Stop it with
// Cleanup (or Main) like the other shared clusters.
func ExampleServers() []string {
	c, err := sharedCluster(Config{})
	if err != nil {
		panic(fmt.Sprintf("zktest: example servers: %v", err))
	}
	return c.Addrs()
}

// sharedCluster starts (once) or returns the shared cluster for cfg.
func sharedCluster(cfg Config) (*Cluster, error) {
	cfg = cfg.normalized()
	var e *sharedEntry
	ext := externalServers()
	var inst *installation
	if len(ext) == 0 {
		var err error
		if inst, err = findInstallation(); err != nil {
			return nil, err
		}
	}
	shared.mu.Lock()
	if len(ext) > 0 {
		if shared.external == nil {
			shared.external = &sharedEntry{}
		}
		e = shared.external
	} else {
		if shared.clusters == nil {
			shared.clusters = make(map[Config]*sharedEntry)
		}
		if e = shared.clusters[cfg]; e == nil {
			e = &sharedEntry{}
			shared.clusters[cfg] = e
		}
	}
	shared.mu.Unlock()

	e.once.Do(func() {
		if len(ext) > 0 {
			c := &Cluster{addrs: ext, external: true, shared: true}
			if err := waitFor(quorumTimeout, c.quorumStatus); err != nil {
				e.err = fmt.Errorf("external ensemble %s is not ready: %v", EnvServers, err)
				return
			}
			e.c = c
			return
		}
		c, err := launch(cfg, inst)
		if err != nil {
			e.err = err
			return
		}
		c.shared = true
		e.c = c
	})
	return e.c, e.err
}

// Cleanup stops the clusters started by Shared and removes their directories
// (they are kept, and their paths printed to stderr, if a test that used them
// failed or ZKTEST_KEEP=1). Call it at the end of TestMain, or use Main.
// Shared may be called again afterwards and starts new clusters.
func Cleanup() {
	shared.mu.Lock()
	clusters := shared.clusters
	failed := shared.failed
	shared.clusters = nil
	shared.external = nil
	shared.mu.Unlock()
	for _, e := range clusters {
		if e.c == nil {
			continue
		}
		e.c.stop()
		e.c.disposeDir(failed, func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		})
	}
}

// Main runs the tests and then stops the shared clusters:
//
//	func TestMain(m *testing.M) { zktest.Main(m) }
//
// It calls os.Exit with the result of Wrap(m).Run: it skips the package
// without ZooKeeper, and a failing run keeps the shared clusters' logs.
func Main(m *testing.M) { os.Exit(Wrap(m).Run()) }
