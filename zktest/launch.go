package zktest

import (
	"fmt"
	"strings"
)

// Launch starts the servers described by cfg outside of a test, for
// examples, demos and tools, and waits until they serve. The caller must
// Stop the cluster. With ZKTEST_SERVERS set it returns that external
// ensemble instead. Without a ZooKeeper installation it returns an error
// saying how to get one.
func Launch(cfg Config) (*Cluster, error) {
	if ext := externalServers(); len(ext) > 0 {
		c := &Cluster{addrs: ext, external: true}
		if err := waitFor(quorumTimeout, c.quorumStatus); err != nil {
			return nil, fmt.Errorf("zktest: external ensemble %s=%s is not ready: %w", EnvServers, strings.Join(ext, ","), err)
		}
		return c, nil
	}
	inst, err := findInstallation()
	if err != nil {
		return nil, fmt.Errorf("zktest: %w", err)
	}
	c, err := launch(cfg.normalized(), inst)
	if err != nil {
		return nil, fmt.Errorf("zktest: %w", err)
	}
	return c, nil
}

// Stop kills the servers of a Launched cluster, waits for them to exit and
// removes their directory. It does nothing for an external ensemble.
func (c *Cluster) Stop() {
	if c.external {
		return
	}
	c.stop()
	c.disposeDir(false, func(string, ...any) {})
}

// Available reports whether Launch can provide ZooKeeper servers here: an
// external ensemble in ZKTEST_SERVERS, or an installation to launch. The
// error says how to get one. Test mains can use it to skip a package whose
// runnable Examples need servers.
func Available() error {
	if len(externalServers()) > 0 {
		return nil
	}
	if _, err := findInstallation(); err != nil {
		return fmt.Errorf("zktest: %w", err)
	}
	return nil
}
