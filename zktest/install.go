package zktest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Environment variables understood by zktest.
const (
	// EnvServers names an external ensemble ("host:port,host:port") to use
	// instead of launching servers.
	EnvServers = "ZKTEST_SERVERS"
	// EnvRequire, when "1" (or "true"), turns a missing ZooKeeper installation
	// into a test failure instead of a skip.
	EnvRequire = "ZKTEST_REQUIRE"
	// EnvKeep, when "1" (or "true"), keeps server directories of passing tests.
	EnvKeep = "ZKTEST_KEEP"
	// EnvZooKeeperHome points at an unpacked Apache ZooKeeper release.
	EnvZooKeeperHome = "ZOOKEEPER_HOME"
)

const debianJavaDir = "/usr/share/java"

// debianJars are the jars the server needs from Debian's zookeeper package
// and its dependencies. zookeeper.jar is mandatory; missing optional ones are
// left out of the class path.
var debianJars = []string{
	"zookeeper", "zookeeper-jute", "slf4j-api", "slf4j-simple",
	"netty-buffer", "netty-codec", "netty-common", "netty-handler", "netty-resolver",
	"netty-transport", "netty-transport-native-epoll", "netty-transport-native-unix-common",
	"commons-cli", "commons-io", "metrics-core", "snappy-java",
}

// installation is a way to run a ZooKeeper server JVM.
type installation struct {
	java      string
	classpath string
}

func envTrue(name string) bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv(name)))
	return v == "1" || v == "true" || v == "yes"
}

// externalServers returns the ZKTEST_SERVERS addresses, or nil.
func externalServers() []string {
	var out []string
	for _, s := range strings.Split(os.Getenv(EnvServers), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// findInstallation locates java and the ZooKeeper jars.
func findInstallation() (*installation, error) {
	java := "java"
	if jh := os.Getenv("JAVA_HOME"); jh != "" {
		if p := filepath.Join(jh, "bin", "java"); fileExists(p) {
			java = p
		}
	}
	javaPath, err := exec.LookPath(java)
	if err != nil {
		return nil, fmt.Errorf("no java runtime found (set JAVA_HOME or put java on PATH): %v", err)
	}

	if home := os.Getenv(EnvZooKeeperHome); home != "" {
		var jars []string
		for _, pattern := range []string{filepath.Join(home, "lib", "*.jar"), filepath.Join(home, "*.jar")} {
			m, _ := filepath.Glob(pattern)
			jars = append(jars, m...)
		}
		sort.Strings(jars)
		found := false
		for _, j := range jars {
			if strings.HasPrefix(filepath.Base(j), "zookeeper-") && !strings.Contains(filepath.Base(j), "jute") {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("%s=%s has no zookeeper-*.jar in lib/", EnvZooKeeperHome, home)
		}
		cp := jars
		if conf := filepath.Join(home, "conf"); fileExists(conf) {
			cp = append([]string{conf}, cp...)
		}
		return &installation{java: javaPath, classpath: strings.Join(cp, string(os.PathListSeparator))}, nil
	}

	if !fileExists(filepath.Join(debianJavaDir, "zookeeper.jar")) {
		return nil, fmt.Errorf("no ZooKeeper installation found")
	}
	var cp []string
	for _, j := range debianJars {
		if p := filepath.Join(debianJavaDir, j+".jar"); fileExists(p) {
			cp = append(cp, p)
		}
	}
	return &installation{java: javaPath, classpath: strings.Join(cp, string(os.PathListSeparator))}, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

const howToInstall = "install it with `sudo apt-get install zookeeper` (Debian/Ubuntu), " +
	"or set ZOOKEEPER_HOME to an unpacked Apache ZooKeeper release, " +
	"or set ZKTEST_SERVERS=host:port,... to use a running ensemble " +
	"(see docker/compose.yaml)"

// requireInstallation returns the installation or skips (fails with
// ZKTEST_REQUIRE=1) the test.
func requireInstallation(t testing.TB) *installation {
	t.Helper()
	inst, err := findInstallation()
	if err != nil {
		msg := fmt.Sprintf("zktest: %v; %s", err, howToInstall)
		if envTrue(EnvRequire) {
			t.Fatalf("%s (%s=1 is set)", msg, EnvRequire)
		}
		t.Skip(msg)
	}
	return inst
}
