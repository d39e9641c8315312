package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/zkrecipes/zkrecipes/recipes"
)

var metricsOnce struct {
	sync.Once
	opt recipes.Option
	err error
}

// serveMetrics serves the library's metrics (docs/METRICS.md) in
// Prometheus text format at http://addr/metrics for as long as the process
// runs, and returns the session option that records into them.
func serveMetrics(addr string, log *slog.Logger) (recipes.Option, error) {
	metricsOnce.Do(func() {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			metricsOnce.err = err
			return
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			metricsOnce.err = fail(exitUsage, "--metrics-addr: %v", err)
			return
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux}
		go func() { // lives as long as the command
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("metrics server stopped", "err", err)
			}
		}()
		log.Info("serving metrics", "url", fmt.Sprintf("http://%s/metrics", ln.Addr()))
		metricsOnce.opt = recipes.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)))
	})
	return metricsOnce.opt, metricsOnce.err
}
