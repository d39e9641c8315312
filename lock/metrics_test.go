package lock_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// counts sums the data points of every counter and histogram by metric name
// and attribute set ("name{k=v,...}").
func counts(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[m.Name+"{"+p.Attributes.Encoded(attribute.DefaultEncoder())+"}"] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[m.Name+"{"+p.Attributes.Encoded(attribute.DefaultEncoder())+"}"] += int64(p.Count)
				}
			}
		}
	}
	return out
}

// encoded builds the key counts uses: attributes sorted by key, as the SDK encodes them.
func key(name, attrs string) string { return name + "{" + attrs + "}" }

func TestMetricsRecorded(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })

	s1 := zkc.Session(t, recipes.WithMeterProvider(mp))
	s2 := zkc.Session(t, recipes.WithMeterProvider(mp))
	l1, err := lock.NewMutex(s1, root).Acquire(ctx)
	require.NoError(t, err)
	_, err = lock.NewMutex(s2, root).TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	require.NoError(t, l1.Release(ctx))

	l2, err := lock.NewMutex(s2, root).Acquire(ctx)
	require.NoError(t, err)
	zkc.Expire(t, s2)
	select {
	case <-l2.Done():
	case <-time.After(patience):
		t.Fatal("lease not lost")
	}
	<-s2.Done()

	got := counts(t, reader)
	t.Logf("%v", got)
	require.Equal(t, int64(2), got[key("zkrecipes.acquisitions", "outcome=granted,recipe=mutex")])
	require.Equal(t, int64(1), got[key("zkrecipes.acquisitions", "outcome=locked,recipe=mutex")])
	require.Equal(t, int64(3), got[key("zkrecipes.acquire.wait", "outcome=granted,recipe=mutex")]+got[key("zkrecipes.acquire.wait", "outcome=locked,recipe=mutex")])
	require.Equal(t, int64(1), got[key("zkrecipes.releases", "outcome=released,recipe=mutex")])
	require.Equal(t, int64(1), got[key("zkrecipes.hold.duration", "end=released,recipe=mutex")])
	lost := got[key("zkrecipes.leases.lost", "cause=suspended,recipe=mutex")] + got[key("zkrecipes.leases.lost", "cause=expired,recipe=mutex")]
	require.Equal(t, int64(1), lost, "one lease lost to the expiry")
	require.Equal(t, int64(1), got[key("zkrecipes.cleanup.nodes", "outcome=deleted,reason=discarded")], "TryAcquire's node")
	require.Equal(t, int64(2), got[key("zkrecipes.session.transitions", "state=connected")])
	require.Equal(t, int64(1), got[key("zkrecipes.session.transitions", "cause=expired,state=lost")])
}
