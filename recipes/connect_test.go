package recipes_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/internal/wire"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func logTo(buf *syncBuffer, lvl slog.Level) recipes.Option {
	return recipes.WithLogger(slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: lvl})))
}

func TestConnectNilContext(t *testing.T) {
	//lint:ignore SA1012 the nil context is the input under test
	s, err := recipes.Connect(nil, []string{"127.0.0.1:2181"}) //nolint:staticcheck
	require.ErrorContains(t, err, "nil context")
	require.Nil(t, s)
}

func TestConnectRejectsBadPorts(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:99999", "127.0.0.1:0", "127.0.0.1:http", ":2181", "127.0.0.1:-1"} {
		start := time.Now()
		s, err := recipes.Connect(t.Context(), []string{addr})
		require.Error(t, err, addr)
		require.Nil(t, s)
		assert.Contains(t, err.Error(), addr)
		assert.Less(t, time.Since(start), time.Second, "bad address %s must fail at once", addr)
	}
}

func TestConnectRefusedSaysWhy(t *testing.T) {
	addr := zktest.ClosedPort(t)
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	s, err := recipes.Connect(ctx, []string{addr}, logTo(&logs, slog.LevelWarn))
	require.Nil(t, s)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "the cause must be in the error: %v", err)
	assert.Contains(t, err.Error(), addr+": dial tcp")
	assert.Contains(t, err.Error(), "connection refused")
	assert.Contains(t, logs.String(), "level=WARN msg=\"cannot reach ZooKeeper server\" component=zkrecipes server="+addr)
}

func TestConnectFailFast(t *testing.T) {
	a, b := zktest.ClosedPort(t), zktest.ClosedPort(t)
	start := time.Now()
	s, err := recipes.Connect(t.Context(), []string{a, b}, recipes.WithFailFast(), logTo(&syncBuffer{}, slog.LevelWarn))
	require.Nil(t, s)
	require.ErrorIs(t, err, recipes.ErrUnreachable)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	assert.Contains(t, err.Error(), a)
	assert.Contains(t, err.Error(), b)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestConnectFailFastWaitsForASilentServer(t *testing.T) {
	// One server refuses, one accepts and stays silent: not every server
	// refused, so Connect waits for ctx and names both causes.
	refusing, silent := zktest.ClosedPort(t), zktest.SilentServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	s, err := recipes.Connect(ctx, []string{refusing, silent}, recipes.WithFailFast(),
		recipes.WithSessionTimeout(time.Second), logTo(&syncBuffer{}, slog.LevelWarn))
	require.Nil(t, s)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, recipes.ErrUnreachable)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	require.ErrorIs(t, err, wire.ErrNoHandshake)
	assert.Contains(t, err.Error(), silent+": no session handshake: the server ") // did not answer in time, or has not answered yet
}

func TestSessionStatesLogAtTheirLevels(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	var info, debug syncBuffer
	s1, err := recipes.Connect(ctxT(t, 10*time.Second), zkc.Addrs(), logTo(&info, slog.LevelInfo))
	require.NoError(t, err)
	s1.Close()
	s2, err := recipes.Connect(ctxT(t, 10*time.Second), zkc.Addrs(), logTo(&debug, slog.LevelDebug))
	require.NoError(t, err)
	s2.Close()
	assert.Empty(t, info.String(), "a session that connects and closes logs nothing at INFO")
	assert.Contains(t, debug.String(), "level=DEBUG msg=\"session state\"")
	assert.Contains(t, debug.String(), "to=connected")
	assert.Contains(t, debug.String(), "to=lost")
}

func TestParseTokenSaysWhichRule(t *testing.T) {
	for in, why := range map[string]string{
		"":                      "empty",
		"abc":                   "not a decimal number",
		"12x":                   "not a decimal number",
		"1.5":                   "not a decimal number",
		"-5":                    "negative",
		"-99999999999999999999": "negative",
		"0":                     "zero",
		"9223372036854775808":   "too large",
	} {
		_, err := recipes.ParseToken(in)
		require.Error(t, err, in)
		assert.True(t, strings.HasSuffix(err.Error(), why) || strings.Contains(err.Error(), ": "+why), "%q: %v", in, err)
	}
	tok, err := recipes.ParseToken("9223372036854775807")
	require.NoError(t, err)
	assert.Equal(t, recipes.Token(9223372036854775807), tok)
}
