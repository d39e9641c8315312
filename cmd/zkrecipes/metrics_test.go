package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zkrecipes/zkrecipes/zktest"
)

// --metrics-addr serves the library's metrics in Prometheus format while
// the command runs.
func TestMetricsEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	path := zktest.Root(t) + "/lock"
	c := start(t, true, "lock", servers(t), "--metrics-addr="+addr, path, "--", "sh", "-c", "echo ready; read x; exit 0")
	c.waitOutput("ready", 30*time.Second)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if testing.Verbose() {
		t.Logf("metrics:\n%s", body)
	}
	for _, want := range []string{"zkrecipes_acquisitions_total", "zkrecipes_acquire_wait_seconds_bucket", "zkrecipes_session_transitions_total"} { // as docs/METRICS.md names them
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	c.stdin.Close()
	c.expectExit(t, 0)
}
