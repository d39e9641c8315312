package fence

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/recipes"
)

func TestMemory(t *testing.T) {
	runSuite(t, suiteConfig{writers: 64, perWriter: 2000, resources: 3}, func(t *testing.T) subject {
		m := &Memory{}
		var mu sync.Mutex
		logs := map[string][]recipes.Token{}
		m.onAccept = func(r string, tok recipes.Token) { // under r's lock
			mu.Lock()
			logs[r] = append(logs[r], tok)
			mu.Unlock()
		}
		return subject{c: m, log: func(t *testing.T, r string) []recipes.Token {
			mu.Lock()
			defer mu.Unlock()
			return logs[r]
		}}
	})
}

// Do runs the writes themselves under the check: the state they build up
// only ever sees non-decreasing tokens, and a stale write never runs. The
// state is unsynchronised on purpose: -race reports overlapping writes.
func TestMemoryDoWritesInTokenOrder(t *testing.T) {
	var m Memory
	type state struct {
		written []recipes.Token
	}
	states := map[string]*state{"x": {}, "y": {}}
	var wg sync.WaitGroup
	var gen sync.Mutex
	next := map[string]recipes.Token{"x": 1, "y": 1}
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				r := "x"
				if (w+i)%2 == 1 {
					r = "y"
				}
				gen.Lock()
				if (w*7+i)%5 == 0 {
					next[r]++
				}
				tok := next[r] - recipes.Token((w+i)%3)
				gen.Unlock()
				st := states[r]
				err := m.Do(r, max(tok, 1), func() error {
					st.written = append(st.written, max(tok, 1))
					return nil
				})
				if err != nil && !errors.Is(err, ErrStale) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for r, st := range states {
		require.NotEmpty(t, st.written)
		for i := 1; i < len(st.written); i++ {
			require.LessOrEqual(t, st.written[i-1], st.written[i], "%s written out of token order", r)
		}
		h, _ := m.Highest(context.Background(), r)
		assert.Equal(t, st.written[len(st.written)-1], h)
	}
}

func TestMemoryDoErrors(t *testing.T) {
	var m Memory
	ran := false
	require.NoError(t, m.Do("r", 10, func() error { ran = true; return nil }))
	require.True(t, ran)

	ran = false
	err := m.Do("r", 9, func() error { ran = true; return nil })
	require.ErrorIs(t, err, ErrStale)
	require.False(t, ran, "a stale write must not run")

	boom := errors.New("boom")
	require.ErrorIs(t, m.Do("r", 11, func() error { return boom }), boom)
	h, _ := m.Highest(context.Background(), "r")
	assert.Equal(t, recipes.Token(11), h, "a failed write still raises the bar")

	require.Panics(t, func() { _ = m.Do("r", 12, func() error { panic("p") }) })
	require.NoError(t, m.Do("r", 12, nil), "the lock is released after a panic")

	m.Set("r", 5)
	h, _ = m.Highest(context.Background(), "r")
	assert.Equal(t, recipes.Token(12), h, "Set never lowers")
	m.Set("s", 5)
	require.ErrorIs(t, m.Accept(context.Background(), "s", 4), ErrStale)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, m.Accept(ctx, "r", 20), context.Canceled)
	h, _ = m.Highest(context.Background(), "r")
	assert.Equal(t, recipes.Token(12), h)
}
