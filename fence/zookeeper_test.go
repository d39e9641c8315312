package fence

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

func TestZooKeeper(t *testing.T) {
	zkc := zktest.Start(t)
	sess := zkc.Session(t)
	var conflicts atomic.Int64
	t.Cleanup(func() { t.Logf("%d compare-and-set conflicts retried", conflicts.Load()) })
	runSuite(t, suiteConfig{writers: 16, perWriter: 60, resources: 3}, func(t *testing.T) subject {
		z := NewZooKeeper(sess, zktest.Root(t)+"/fence")
		z.onConflict = func() { conflicts.Add(1) }
		// The log is the znode's own history: each accepted call wrote one
		// version (create = 0, each set +1), so ordering by version gives
		// the order ZooKeeper applied them in.
		var mu sync.Mutex
		byVersion := map[string]map[int32]recipes.Token{}
		z.onAccept = func(r string, v int32, tok recipes.Token) {
			mu.Lock()
			defer mu.Unlock()
			if byVersion[r] == nil {
				byVersion[r] = map[int32]recipes.Token{}
			}
			if old, dup := byVersion[r][v]; dup {
				t.Errorf("%s: version %d written twice (tokens %d and %d)", r, v, old, tok)
			}
			byVersion[r][v] = tok
		}
		return subject{c: z, log: func(t *testing.T, r string) []recipes.Token {
			mu.Lock()
			defer mu.Unlock()
			vs := byVersion[r]
			log := make([]recipes.Token, 0, len(vs))
			for v := int32(0); v < int32(len(vs)); v++ {
				tok, ok := vs[v]
				require.True(t, ok, "%s: no accepted call wrote version %d of %d", r, v, len(vs))
				log = append(log, tok)
			}
			return log
		}}
	})

	t.Run("NodeLayout", func(t *testing.T) {
		root := zktest.Root(t)
		z := NewZooKeeper(sess, root)
		ctx := ctxT(t, 10*time.Second)
		const r = "..db/orders 17%"
		require.NoError(t, z.Accept(ctx, r, 4294967300))
		assert.Equal(t, root+"/%2E.db%2Forders%2017%25", z.Path(r))
		data, st, err := zkc.Conn(t).Get(z.Path(r))
		require.NoError(t, err)
		assert.Equal(t, "4294967300", string(data))
		assert.Zero(t, st.EphemeralOwner, "persistent")

		_, err = NewZooKeeper(sess, "relative").Highest(ctx, r)
		assert.ErrorIs(t, err, recipes.ErrInvalidPath)
		err = NewZooKeeper(nil, root).Accept(ctx, r, 1)
		assert.ErrorIs(t, err, recipes.ErrNilSession)
		err = NewZooKeeper(sess, root, WithACL(nil)).Accept(ctx, r, 1)
		assert.ErrorContains(t, err, "empty ACL")
	})

	t.Run("ManyCheckersOneBase", func(t *testing.T) {
		// Independent processes: separate sessions and checkers on one base.
		base := zktest.Root(t)
		var zs []*ZooKeeper
		for range 4 {
			z := NewZooKeeper(zkc.Session(t), base)
			zs = append(zs, z)
		}
		ctx := ctxT(t, time.Minute)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var accepted []recipes.Token
		for i, z := range zs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range 40 {
					tok := recipes.Token(1 + (k*4+i)/3) // interleaved, with repeats
					if err := z.Accept(ctx, "shared", tok); err == nil {
						mu.Lock()
						accepted = append(accepted, tok)
						mu.Unlock()
					} else {
						assert.ErrorIs(t, err, ErrStale)
					}
				}
			}()
		}
		wg.Wait()
		h, err := zs[0].Highest(ctx, "shared")
		require.NoError(t, err)
		assert.Equal(t, slices.Max(accepted), h)
		assert.Equal(t, recipes.Token(1+(39*4+3)/3), h, "the largest token can never be rejected")
	})
}
