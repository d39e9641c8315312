package fence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/recipes"
)

func TestHeaderRoundTrip(t *testing.T) {
	h := http.Header{}
	_, ok, err := FromHeader(h)
	assert.False(t, ok)
	assert.NoError(t, err)

	SetHeader(h, 4294967300)
	assert.Equal(t, "4294967300", h.Get("Fencing-Token"))
	tok, ok, err := FromHeader(h)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, recipes.Token(4294967300), tok)

	for _, bad := range [][]string{{"abc"}, {"0"}, {"-5"}, {""}, {"1", "2"}, {"99999999999999999999"}} {
		h := http.Header{Header: bad}
		_, ok, err := FromHeader(h)
		assert.True(t, ok, "%q", bad)
		assert.ErrorIs(t, err, ErrInvalidToken, "%q", bad)
	}
}

// acceptOnly hides Memory.Do: Middleware then only calls Accept.
type acceptOnly struct{ Checker }

type failing struct{ Checker }

func (failing) Accept(context.Context, string, recipes.Token) error {
	return errors.New("store unreachable")
}

func TestMiddleware(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    func() Checker
	}{
		{"Memory", func() Checker { return &Memory{} }},
		{"AcceptOnly", func() Checker { return acceptOnly{&Memory{}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen []recipes.Token
			h := Middleware(tc.c(), func(r *http.Request) string {
				if r.Method == http.MethodGet {
					return "" // reads are not fenced
				}
				return r.URL.Path
			})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tok, ok := TokenFrom(r.Context())
				if r.Method != http.MethodGet {
					assert.True(t, ok)
					seen = append(seen, tok)
				}
				fmt.Fprint(w, "ok")
			}))
			srv := httptest.NewServer(h)
			defer srv.Close()

			do := func(method, path, tok string) (int, string) {
				req, err := http.NewRequest(method, srv.URL+path, nil)
				require.NoError(t, err)
				if tok != "" {
					req.Header.Set(Header, tok)
				}
				resp, err := srv.Client().Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(body)
			}
			code, _ := do("PUT", "/a", "")
			assert.Equal(t, http.StatusPreconditionRequired, code, "missing token")
			code, _ = do("PUT", "/a", "x1")
			assert.Equal(t, http.StatusBadRequest, code, "malformed token")
			code, _ = do("PUT", "/a", "0")
			assert.Equal(t, http.StatusBadRequest, code, "invalid token")
			code, _ = do("PUT", "/a", "5")
			assert.Equal(t, http.StatusOK, code)
			code, _ = do("PUT", "/a", "5")
			assert.Equal(t, http.StatusOK, code, "equal token")
			code, body := do("PUT", "/a", "4")
			assert.Equal(t, http.StatusConflict, code, "stale token")
			assert.Contains(t, body, "token 4 is older than the highest accepted 5")
			code, _ = do("PUT", "/b", "1")
			assert.Equal(t, http.StatusOK, code, "other resource")
			code, _ = do("GET", "/a", "")
			assert.Equal(t, http.StatusOK, code, "unfenced request")
			assert.Equal(t, []recipes.Token{5, 5, 1}, seen)
		})
	}

	t.Run("CheckerFails", func(t *testing.T) {
		h := Middleware(failing{}, func(*http.Request) string { return "r" })(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			t.Error("handler ran")
		}))
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/", nil)
		SetHeader(req.Header, 3)
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Contains(t, rec.Body.String(), "store unreachable")
	})
}

// With a Memory, handlers run under the check: concurrent requests with
// interleaved tokens reach the (unsynchronised) state in token order.
func TestMiddlewareMemorySerialisesHandlers(t *testing.T) {
	var state []recipes.Token // no lock: -race would catch overlapping handlers
	h := Middleware(&Memory{}, func(*http.Request) string { return "state" })(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			tok, _ := TokenFrom(r.Context())
			state = append(state, tok)
		}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				req := httptest.NewRequest("PUT", "/", strings.NewReader(""))
				SetHeader(req.Header, recipes.Token(1+(i*16+w)/20))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				mu.Lock()
				codes[rec.Code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 16*200, codes[http.StatusOK]+codes[http.StatusConflict], "%v", codes)
	assert.Len(t, state, codes[http.StatusOK])
	for i := 1; i < len(state); i++ {
		require.LessOrEqual(t, state[i-1], state[i], "handler ran out of token order at %d", i)
	}
	t.Logf("%d requests: %d accepted, %d conflicts", 16*200, codes[http.StatusOK], codes[http.StatusConflict])
}
