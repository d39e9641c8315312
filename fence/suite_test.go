package fence

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// subject is a checker under test with its store's own record of the
// tokens it accepted per resource, in the order the store applied them.
type subject struct {
	c   Checker
	log func(t *testing.T, resource string) []recipes.Token
}

type suiteConfig struct {
	writers   int // concurrent goroutines
	perWriter int // Accept calls each
	resources int
}

// runSuite runs the guarantees every Checker must keep.
func runSuite(t *testing.T, cfg suiteConfig, newSubject func(t *testing.T) subject) {
	t.Run("Basic", func(t *testing.T) {
		s := newSubject(t)
		ctx := ctxT(t, 30*time.Second)
		const r = "orders/17"

		h, err := s.c.Highest(ctx, r)
		require.NoError(t, err)
		assert.Zero(t, h, "unknown resource")

		require.NoError(t, s.c.Accept(ctx, r, 500))
		require.NoError(t, s.c.Accept(ctx, r, 500), "equal token accepted")
		require.NoError(t, s.c.Accept(ctx, r, 500), "equal token accepted again")

		err = s.c.Accept(ctx, r, 499)
		require.ErrorIs(t, err, ErrStale)
		var se *StaleError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, StaleError{Resource: r, Token: 499, Highest: 500}, *se)
		assert.Contains(t, err.Error(), "499")
		assert.Contains(t, err.Error(), "500")

		require.NoError(t, s.c.Accept(ctx, r, 4294967300), "newer token accepted")
		err = s.c.Accept(ctx, r, 500)
		require.ErrorAs(t, err, &se, "the previous holder is now stale")
		assert.Equal(t, recipes.Token(4294967300), se.Highest)

		h, err = s.c.Highest(ctx, r)
		require.NoError(t, err)
		assert.Equal(t, recipes.Token(4294967300), h)
		assert.Equal(t, []recipes.Token{500, 500, 500, 4294967300}, s.log(t, r))

		for _, bad := range []recipes.Token{0, -1} {
			err := s.c.Accept(ctx, r, bad)
			assert.ErrorIs(t, err, ErrInvalidToken)
			assert.NotErrorIs(t, err, ErrStale)
		}
		assert.Error(t, s.c.Accept(ctx, "", 1), "empty resource")
		h, err = s.c.Highest(ctx, r)
		require.NoError(t, err)
		assert.Equal(t, recipes.Token(4294967300), h, "invalid calls change nothing")
	})

	t.Run("IndependentResources", func(t *testing.T) {
		s := newSubject(t)
		ctx := ctxT(t, 30*time.Second)
		require.NoError(t, s.c.Accept(ctx, "a", 100))
		require.NoError(t, s.c.Accept(ctx, "b", 1), "a's token does not fence b")
		require.NoError(t, s.c.Accept(ctx, "a/b", 2), "nor a/b")
		require.ErrorIs(t, s.c.Accept(ctx, "a", 99), ErrStale)
		require.NoError(t, s.c.Accept(ctx, "b", 2))
		for r, want := range map[string]recipes.Token{"a": 100, "b": 2, "a/b": 2, "c": 0} {
			h, err := s.c.Highest(ctx, r)
			require.NoError(t, err)
			assert.Equal(t, want, h, r)
		}
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		s := newSubject(t)
		ctx := ctxT(t, 2*time.Minute)
		resources := make([]string, cfg.resources)
		gens := make([]atomic.Int64, cfg.resources) // newest token handed out per resource
		for i := range resources {
			resources[i] = fmt.Sprintf("res-%d", i)
			gens[i].Store(int64(1000 * (i + 1)))
		}
		type outcome struct {
			accepted, rejected []recipes.Token
		}
		var mu sync.Mutex
		out := make(map[string]*outcome)
		for _, r := range resources {
			out[r] = &outcome{}
		}
		var wg sync.WaitGroup
		errc := make(chan error, cfg.writers)
		for w := 0; w < cfg.writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range cfg.perWriter {
					i := rand.IntN(len(resources))
					r := resources[i]
					// A new grant a quarter of the time; otherwise the current
					// holder's token or one of a few previous holders'.
					var tok recipes.Token
					if rand.IntN(4) == 0 {
						tok = recipes.Token(gens[i].Add(1))
					} else {
						tok = recipes.Token(gens[i].Load() - rand.Int64N(3))
					}
					err := s.c.Accept(ctx, r, tok)
					var se *StaleError
					switch {
					case err == nil:
						mu.Lock()
						out[r].accepted = append(out[r].accepted, tok)
						mu.Unlock()
					case errors.As(err, &se):
						if se.Resource != r || se.Token != tok || se.Highest <= tok {
							errc <- fmt.Errorf("bad StaleError %+v for %s token %d", *se, r, tok)
							return
						}
						mu.Lock()
						out[r].rejected = append(out[r].rejected, tok)
						mu.Unlock()
					default:
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			require.NoError(t, err)
		}
		var nAcc, nRej int
		for _, r := range resources {
			o := out[r]
			nAcc += len(o.accepted)
			nRej += len(o.rejected)
			log := s.log(t, r)
			require.NotEmpty(t, log, r)
			for i := 1; i < len(log); i++ {
				require.LessOrEqual(t, log[i-1], log[i], "%s: accepted tokens decrease at log[%d]: %v", r, i, log)
			}
			// The store's log holds exactly the accepted calls.
			a, l := slices.Clone(o.accepted), slices.Clone(log)
			slices.Sort(a)
			slices.Sort(l)
			require.Equal(t, a, l, "%s: the store's log and the accepted calls differ", r)
			h, err := s.c.Highest(ctx, r)
			require.NoError(t, err)
			assert.Equal(t, slices.Max(log), h, r)
			for _, tok := range o.rejected {
				assert.Less(t, tok, h, r)
			}
		}
		t.Logf("%d writers, %d resources: %d accepted (with equal tokens), %d rejected as stale",
			cfg.writers, cfg.resources, nAcc, nRej)
		assert.Positive(t, nRej, "no stale token was tried: the test exercised nothing")
		assert.Equal(t, cfg.writers*cfg.perWriter, nAcc+nRej)
	})
}
