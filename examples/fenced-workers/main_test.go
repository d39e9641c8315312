package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkrecipes/zkrecipes/zktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemo runs the demo's workers in a short mode and checks its story:
// the frozen holder's late write is rejected, every other write counted.
func TestDemo(t *testing.T) {
	zkc := zktest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := defaultConfig()
	cfg.Workers, cfg.Writes, cfg.SessionTimeout = 3, 12, time.Second
	var out bytes.Buffer
	res, err := Run(ctx, zkc.Addrs(), cfg, &out)
	t.Log("\n" + out.String())
	require.NoError(t, err)
	require.True(t, res.StaleRejected, "stale write accepted")
	require.Equal(t, 1, res.Rejected)
	require.Equal(t, res.Accepted, res.Counter)
	require.GreaterOrEqual(t, res.Accepted, cfg.Writes)
	require.Greater(t, res.TakeoverToken, res.FrozenToken)
	require.Contains(t, out.String(), "FENCE REJECTED")
}
