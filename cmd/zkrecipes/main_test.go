package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zkrecipes/zkrecipes/zktest"
)

// binary is the zkrecipes command, built once by TestMain.
var binary string

// raceEnabled is set by race_test.go: the binary is then built with -race too.
var raceEnabled bool

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zkrecipes-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "zkrecipes")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	gocmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gocmd); err != nil {
		gocmd = "go"
	}
	build := exec.Command(gocmd, append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building zkrecipes:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	zktest.Cleanup()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// cli is one run of the binary.
type cli struct {
	t       testing.TB
	cmd     *exec.Cmd
	stdout  *lines
	stderr  *lines
	stdin   *os.File // write end of the child's stdin, if asked for
	done    chan struct{}
	code    int
	elapsed time.Duration
}

// lines collects output and lets tests wait for a line.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// start runs the binary with args; withStdin gives it a pipe for stdin
// (closing it ends a child that reads stdin). ZK_* variables are unset.
func start(t testing.TB, withStdin bool, args ...string) *cli {
	t.Helper()
	return startEnv(t, nil, withStdin, args...)
}

// startEnv is start with env added to the environment.
func startEnv(t testing.TB, env []string, withStdin bool, args ...string) *cli {
	t.Helper()
	c := &cli{t: t, stdout: &lines{}, stderr: &lines{}, done: make(chan struct{})}
	c.cmd = exec.Command(binary, args...)
	c.cmd.Env = append(cleanEnv(), env...)
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	c.cmd.WaitDelay = 10 * time.Second
	var stdinR *os.File
	if withStdin {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		stdinR, c.stdin = r, w
		c.cmd.Stdin = r
	}
	begin := time.Now()
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if stdinR != nil {
		stdinR.Close()
	}
	go func() {
		defer close(c.done)
		err := c.cmd.Wait()
		c.elapsed = time.Since(begin)
		var ee *exec.ExitError
		switch {
		case err == nil:
			c.code = 0
		case errors.As(err, &ee):
			c.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				c.code = 128 + int(ws.Signal())
			}
		default:
			c.code = -1
		}
	}()
	t.Cleanup(func() {
		if c.stdin != nil {
			c.stdin.Close()
		}
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ZK_") && !strings.HasPrefix(kv, "ZKRECIPES_") {
			env = append(env, kv)
		}
	}
	return env
}

// wait waits for the binary to exit and returns its exit code.
func (c *cli) wait(timeout time.Duration) int {
	c.t.Helper()
	select {
	case <-c.done:
		return c.code
	case <-time.After(timeout):
		c.t.Fatalf("%v did not exit within %v\nstdout:\n%s\nstderr:\n%s", c.cmd.Args[1:], timeout, c.stdout, c.stderr)
		return -1
	}
}

// waitOutput waits until stdout contains want and returns stdout.
func (c *cli) waitOutput(want string, timeout time.Duration) string {
	c.t.Helper()
	return c.waitIn(c.stdout, want, timeout)
}

// waitStderr waits until stderr contains want and returns stderr.
func (c *cli) waitStderr(want string, timeout time.Duration) string {
	c.t.Helper()
	return c.waitIn(c.stderr, want, timeout)
}

func (c *cli) waitIn(l *lines, want string, timeout time.Duration) string {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := l.String()
		if strings.Contains(out, want) {
			return out
		}
		select {
		case <-c.done:
			if out := l.String(); strings.Contains(out, want) {
				return out
			}
			c.t.Fatalf("%v exited %d before printing %q\nstdout:\n%s\nstderr:\n%s", c.cmd.Args[1:], c.code, want, c.stdout, c.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%v did not print %q within %v\nstdout:\n%s\nstderr:\n%s", c.cmd.Args[1:], want, timeout, c.stdout, c.stderr)
		}
	}
}

// runCLI runs the binary to completion.
func runCLI(t testing.TB, args ...string) *cli {
	t.Helper()
	c := start(t, false, args...)
	c.wait(time.Minute)
	return c
}

func (c *cli) expect(code int) *cli {
	c.t.Helper()
	if c.code != code {
		c.t.Fatalf("%v: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", c.cmd.Args[1:], c.code, code, c.stdout, c.stderr)
	}
	return c
}

// servers is the --servers flag for the shared test server.
func servers(t testing.TB) string {
	return "--servers=" + strings.Join(zktest.Shared(t, zktest.Config{}).Addrs(), ",")
}

// identityOf is what a zkrecipes process stores on its nodes.
func identityOf(t testing.TB, c *cli) string {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return host + ":" + strconv.Itoa(c.cmd.Process.Pid)
}

// field returns the word after "key" in a line of out: "key value".
func field(t testing.TB, out, key string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == key {
				return f[i+1]
			}
		}
	}
	t.Fatalf("no %q in output:\n%s", key, out)
	return ""
}

func token(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		t.Fatalf("bad token %q: %v", s, err)
	}
	return n
}
