package election_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

func TestLeadershipMetrics(t *testing.T) {
	zkc := ensemble(t)
	root := zktest.Root(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })

	e := election.NewElection(zkc.Session(t, recipes.WithMeterProvider(mp)), root)
	term := campaign(t, e)
	resign(t, term)
	term = campaign(t, e)
	resign(t, term)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, p := range s.DataPoints {
					got[m.Name+"{"+p.Attributes.Encoded(attribute.DefaultEncoder())+"}"] += p.Value
				}
			}
		}
	}
	t.Log(got)
	require.Equal(t, int64(2), got["zkrecipes.election.leadership{event=elected}"])
	zktest.WaitUntil(t, patience, "resignations recorded", func() bool {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "zkrecipes.election.leadership" {
					for _, p := range s.DataPoints {
						if v, _ := p.Attributes.Value("event"); v.AsString() == "resigned" && p.Value == 2 {
							return true
						}
					}
				}
			}
		}
		return false
	})
	require.Equal(t, int64(2), got["zkrecipes.acquisitions{outcome=granted,recipe=election}"])
	require.Equal(t, int64(2), got["zkrecipes.releases{outcome=released,recipe=election}"])
}
