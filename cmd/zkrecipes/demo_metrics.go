package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// demoMetrics collects the library's metrics of the demo's sessions in
// memory, to print them at the end.
type demoMetrics struct {
	reader   *sdkmetric.ManualReader
	provider *sdkmetric.MeterProvider
}

func newDemoMetrics() *demoMetrics {
	r := sdkmetric.NewManualReader()
	return &demoMetrics{reader: r, provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))}
}

// print writes every counter and histogram recorded, one line per
// attribute set: counts for counters, count and mean for durations.
func (m *demoMetrics) print(out io.Writer) {
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		fmt.Fprintf(out, "  (metrics unavailable: %v)\n", err)
		return
	}
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			switch d := mt.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("  %-36s %-48s %6d", mt.Name, attrs(p.Attributes), p.Value))
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					mean := 0.0
					if p.Count > 0 {
						mean = p.Sum / float64(p.Count)
					}
					lines = append(lines, fmt.Sprintf("  %-36s %-48s %6d  mean %.3fs", mt.Name, attrs(p.Attributes), p.Count, mean))
				}
			}
		}
	}
	sort.Strings(lines)
	fmt.Fprintf(out, "\nLibrary metrics (docs/METRICS.md)\n%s\n", strings.Join(lines, "\n"))
}

func attrs(s attribute.Set) string {
	return "{" + s.Encoded(attribute.DefaultEncoder()) + "}"
}

func (m *demoMetrics) shutdown() { m.provider.Shutdown(context.Background()) }
