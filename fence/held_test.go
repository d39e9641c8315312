package fence_test

// The lease-taking helpers (Held, SetHeaderHeld, Transport, Memory.DoHeld,
// Postgres.InTxHeld, ZooKeeper.AcceptHeld) against real servers: a real
// lock.Lease (or election.Term) on a real ZooKeeper, really lost by a
// server-side session expiry, and a real PostgreSQL. Each helper has a way
// to tell whether its token reached the resource, seen from the resource's
// side (the HTTP server, the Memory, the database, the znode).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/fence"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// Both kinds of holder are Holders.
var (
	_ fence.Holder = (*lock.Lease)(nil)
	_ fence.Holder = (*election.Term)(nil)
)

const heldPatience = 30 * time.Second

func heldCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// world is one instance of every fenced resource a helper sends a token to.
type world struct {
	ctx context.Context
	obs *zk.Conn         // the test's own view of the znodes
	zkc *fence.ZooKeeper // on a session of its own, which stays alive
	mem *fence.Memory
	pg  *fence.Postgres // on the test's own *sql.DB, for observing
	db  *sql.DB
	srv *httptest.Server

	pgTable, dataTable string

	mu       sync.Mutex
	n        int
	seen     map[string][]string // URL path -> Fencing-Token of each request that reached the server ("" if none)
	wrote    map[string]bool     // Memory.DoHeld's write ran
	fnCalled map[string]bool     // InTxHeld's fn ran
	pgDBs    map[string]*sql.DB  // the fresh *sql.DB each InTxHeld call used
	heldTok  map[string]recipes.Token
}

func newWorld(t *testing.T, zkc *zktest.Cluster) *world {
	t.Helper()
	ctx := heldCtx(t)
	w := &world{
		ctx: ctx, obs: zkc.Conn(t), mem: &fence.Memory{}, db: fence.PGDB(t),
		seen: map[string][]string{}, wrote: map[string]bool{}, fnCalled: map[string]bool{},
		pgDBs: map[string]*sql.DB{}, heldTok: map[string]recipes.Token{},
	}
	var err error
	w.zkc = fence.NewZooKeeper(zkc.Session(t), zktest.Root(t)+"/fence")

	w.pgTable, w.dataTable = fence.PGTable(t), fence.PGTable(t)
	w.pg = fence.NewPostgres(w.db, w.pgTable)
	require.NoError(t, w.pg.CreateTable(ctx))
	_, err = w.db.ExecContext(ctx, `CREATE TABLE `+w.dataTable+` (resource TEXT NOT NULL, token BIGINT NOT NULL)`)
	require.NoError(t, err)

	// A fenced HTTP service, recording the token of every request that
	// reaches it, before its middleware looks at it.
	fenced := fence.Middleware(&fence.Memory{}, func(r *http.Request) string { return r.URL.Path })(
		http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			rw.WriteHeader(http.StatusNoContent)
		}))
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.seen[r.URL.Path] = append(w.seen[r.URL.Path], r.Header.Get(fence.Header))
		w.mu.Unlock()
		fenced.ServeHTTP(rw, r)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// resource returns a resource name not used before in w.
func (w *world) resource() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	return fmt.Sprintf("res-%d", w.n)
}

func (w *world) lastHeader(r string) (recipes.Token, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	vals := w.seen["/"+r]
	if len(vals) == 0 {
		return 0, false, nil
	}
	if len(vals) > 1 {
		return 0, true, fmt.Errorf("%d requests for %s reached the server", len(vals), r)
	}
	if vals[0] == "" {
		return 0, true, nil
	}
	tok, err := recipes.ParseToken(vals[0])
	return tok, true, err
}

// trackedBody is a request body that records whether it was closed.
type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

// helper is one lease-taking helper.
type helper struct {
	name string
	// use hands h to the helper for resource r (new for each call).
	use func(t *testing.T, w *world, h fence.Holder, r string) error
	// sent says whether anything reached r's resource, and which token was
	// recorded or carried there (0: none).
	sent func(t *testing.T, w *world, r string) (tok recipes.Token, reached bool)
	// reachedWhenRefused: the test sends the request anyway (SetHeaderHeld
	// removes the header; the request is the caller's).
	reachedWhenRefused bool
}

var helpers = []helper{
	{
		name: "Held",
		use: func(t *testing.T, w *world, h fence.Holder, r string) error {
			tok, err := fence.Held(h)
			if err == nil {
				w.heldTok[r] = tok
			} else {
				assert.Zero(t, tok, "token returned with an error")
			}
			return err
		},
		sent: func(t *testing.T, w *world, r string) (recipes.Token, bool) {
			tok, ok := w.heldTok[r]
			return tok, ok
		},
	},
	{
		name: "SetHeaderHeld",
		use: func(t *testing.T, w *world, h fence.Holder, r string) error {
			hdr := http.Header{}
			fence.SetHeader(hdr, 1) // a token left over from an earlier request
			err := fence.SetHeaderHeld(hdr, h)
			// The caller sends the request whatever the outcome: a refused
			// holder's request must carry no token.
			req, rerr := http.NewRequestWithContext(w.ctx, http.MethodPost, w.srv.URL+"/"+r, strings.NewReader("x"))
			require.NoError(t, rerr)
			req.Header = hdr
			resp, rerr := w.srv.Client().Do(req)
			require.NoError(t, rerr)
			resp.Body.Close()
			if err == nil {
				assert.Equal(t, http.StatusNoContent, resp.StatusCode)
			} else {
				assert.Equal(t, http.StatusPreconditionRequired, resp.StatusCode, "request without a token")
			}
			return err
		},
		sent: func(t *testing.T, w *world, r string) (recipes.Token, bool) {
			tok, reached, err := w.lastHeader(r)
			require.NoError(t, err)
			return tok, reached
		},
		reachedWhenRefused: true,
	},
	{
		name: "Transport",
		use: func(t *testing.T, w *world, h fence.Holder, r string) error {
			client := &http.Client{Transport: &fence.Transport{Holder: h, Base: w.srv.Client().Transport}}
			body := &trackedBody{Reader: strings.NewReader("x")}
			req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.srv.URL+"/"+r, body)
			require.NoError(t, err)
			resp, err := client.Do(req)
			assert.True(t, body.closed.Load(), "request body not closed")
			assert.Empty(t, req.Header.Get(fence.Header), "the caller's request was modified")
			if err != nil {
				assert.Nil(t, resp)
				return err
			}
			resp.Body.Close()
			assert.Equal(t, http.StatusNoContent, resp.StatusCode)
			return nil
		},
		sent: func(t *testing.T, w *world, r string) (recipes.Token, bool) {
			tok, reached, err := w.lastHeader(r)
			require.NoError(t, err)
			return tok, reached
		},
	},
	{
		name: "Memory.DoHeld",
		use: func(t *testing.T, w *world, h fence.Holder, r string) error {
			return w.mem.DoHeld(r, h, func() error {
				w.wrote[r] = true
				return nil
			})
		},
		sent: func(t *testing.T, w *world, r string) (recipes.Token, bool) {
			tok, err := w.mem.Highest(w.ctx, r)
			require.NoError(t, err)
			return tok, tok != 0 || w.wrote[r]
		},
	},
	{
		name: "Postgres.InTxHeld",
		use: func(t *testing.T, w *world, h fence.Holder, r string) error {
			// A *sql.DB of its own, not connected yet: whether it ever
			// connected says whether anything was sent.
			db := fence.PGDB(t)
			w.pgDBs[r] = db
			p := fence.NewPostgres(db, w.pgTable)
			return p.InTxHeld(w.ctx, nil, r, "held-test", h, func(tx *sql.Tx) error {
				w.fnCalled[r] = true
				_, err := tx.ExecContext(w.ctx, `INSERT INTO `+w.dataTable+` (resource, token) VALUES ($1, $2)`, r, int64(h.Token()))
				return err
			})
		},
		sent: func(t *testing.T, w *world, r string) (recipes.Token, bool) {
			tok, err := w.pg.Highest(w.ctx, r)
			require.NoError(t, err)
			rows := w.dataRows(t, r)
			if tok != 0 {
				assert.Equal(t, []recipes.Token{tok}, rows, "fn's write committed with the token")
			}
			connected := w.pgDBs[r].Stats().OpenConnections > 0
			return tok, tok != 0 || len(rows) > 0 || w.fnCalled[r] || connected
		},
	},
	{
		name: "ZooKeeper.AcceptHeld",
		use: func(t *testing.T, w *world, h fence.Holder, r string) error {
			return w.zkc.AcceptHeld(w.ctx, r, h)
		},
		sent: func(t *testing.T, w *world, r string) (recipes.Token, bool) {
			return w.znodeToken(t, r)
		},
	},
}

// dataRows returns the tokens of the rows fn wrote for r and committed.
func (w *world) dataRows(t *testing.T, r string) []recipes.Token {
	t.Helper()
	rows, err := w.db.QueryContext(w.ctx, `SELECT token FROM `+w.dataTable+` WHERE resource = $1`, r)
	require.NoError(t, err)
	defer rows.Close()
	var toks []recipes.Token
	for rows.Next() {
		var tok int64
		require.NoError(t, rows.Scan(&tok))
		toks = append(toks, recipes.Token(tok))
	}
	require.NoError(t, rows.Err())
	return toks
}

// znodeToken reads r's token node as the server has it.
func (w *world) znodeToken(t *testing.T, r string) (recipes.Token, bool) {
	t.Helper()
	data, _, err := w.obs.Get(w.zkc.Path(r))
	if errors.Is(err, zk.ErrNoNode) {
		return 0, false
	}
	require.NoError(t, err)
	tok, err := recipes.ParseToken(string(data))
	require.NoError(t, err)
	return tok, true
}

// requireSends checks that every helper sends h's token while h is held.
func requireSends(t *testing.T, w *world, h fence.Holder) {
	t.Helper()
	for _, hp := range helpers {
		r := w.resource()
		require.NoError(t, hp.use(t, w, h, r), "%s while held", hp.name)
		tok, reached := hp.sent(t, w, r)
		require.True(t, reached, "%s while held: nothing reached the resource", hp.name)
		require.Equal(t, h.Token(), tok, "%s while held: token at the resource", hp.name)
	}
}

// requireRefuses checks that every helper refuses h, sending nothing, with
// an error wrapping ErrNotHeld and every error in causes; it returns the
// errors by helper name.
func requireRefuses(t *testing.T, w *world, h fence.Holder, causes ...error) map[string]error {
	t.Helper()
	errs := map[string]error{}
	for _, hp := range helpers {
		r := w.resource()
		var err error
		require.NotPanics(t, func() { err = hp.use(t, w, h, r) }, hp.name)
		require.Error(t, err, "%s accepted a holder that is not held", hp.name)
		t.Logf("%s: %v", hp.name, err)
		for _, c := range causes {
			require.ErrorIs(t, err, c, hp.name)
		}
		tok, reached := hp.sent(t, w, r)
		require.Zero(t, tok, "%s: a refused holder's token reached the resource", hp.name)
		require.Equal(t, hp.reachedWhenRefused, reached, "%s: did the refused call reach the resource", hp.name)
		errs[hp.name] = err
	}
	return errs
}

// expire ends sess on the server and waits until lease knows.
func expire(t *testing.T, zkc *zktest.Cluster, sess *recipes.Session, done <-chan struct{}) {
	t.Helper()
	zkc.Expire(t, sess)
	select {
	case <-done:
	case <-time.After(heldPatience):
		t.Fatalf("lease not over %v after its session expired", heldPatience)
	}
}

func heldCluster(t *testing.T) *zktest.Cluster { return zktest.Shared(t, zktest.Config{}) }

// loseOnSessionEnd keeps a lease across a suspension, so that one lost to
// a server-side expiry ends with recipes.ErrExpired as its cause (under the
// default LoseOnSuspend it is lost, with ErrSuspended, as soon as the server
// drops the connection, before the client hears of the expiry).
var loseOnSessionEnd = recipes.WithLossPolicy(recipes.LoseOnSessionEnd)

func TestHeldHelpersRefuseExpiredLease(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy recipes.LossPolicy
		cause  error
	}{
		{"LoseOnSessionEnd", recipes.LoseOnSessionEnd, recipes.ErrExpired},
		{"LoseOnSuspend", recipes.LoseOnSuspend, recipes.ErrSuspended},
	} {
		t.Run(tc.name, func(t *testing.T) {
			zkc := heldCluster(t)
			w := newWorld(t, zkc)
			sess := zkc.Session(t, recipes.WithLossPolicy(tc.policy))
			lease, err := lock.NewMutex(sess, zktest.Root(t)+"/lock").Acquire(w.ctx)
			require.NoError(t, err)

			requireSends(t, w, lease)

			expire(t, zkc, sess, lease.Done())
			cause := lease.Err()
			require.ErrorIs(t, cause, lock.ErrLost)
			require.ErrorIs(t, cause, tc.cause)

			errs := requireRefuses(t, w, lease, fence.ErrNotHeld, lock.ErrLost, tc.cause, cause)
			for name, err := range errs {
				var nh *fence.NotHeldError
				require.ErrorAs(t, err, &nh, name)
				assert.Equal(t, lease.Token(), nh.Token, name)
				assert.Equal(t, cause, nh.Cause, name)
				assert.Contains(t, err.Error(), "not sent", name)
			}
		})
	}
}

func TestHeldHelpersRefuseReleasedLease(t *testing.T) {
	zkc := heldCluster(t)
	w := newWorld(t, zkc)
	lease, err := lock.NewMutex(zkc.Session(t), zktest.Root(t)+"/lock").Acquire(w.ctx)
	require.NoError(t, err)
	requireSends(t, w, lease)

	require.NoError(t, lease.Release(w.ctx))
	require.ErrorIs(t, lease.Err(), lock.ErrReleased)
	errs := requireRefuses(t, w, lease, fence.ErrNotHeld, lock.ErrReleased)
	for name, err := range errs {
		assert.NotErrorIs(t, err, lock.ErrLost, name)
	}
}

func TestHeldHelpersRefuseNilHolder(t *testing.T) {
	zkc := heldCluster(t)
	w := newWorld(t, zkc)
	var lease *lock.Lease
	requireRefuses(t, w, lease)
	requireRefuses(t, w, nil)

	lease, err := lock.NewMutex(zkc.Session(t), zktest.Root(t)+"/lock").Acquire(w.ctx)
	require.NoError(t, err)
	var hdrErr error
	require.NotPanics(t, func() { hdrErr = fence.SetHeaderHeld(nil, lease) })
	require.ErrorContains(t, hdrErr, "nil http.Header")
}

func TestHeldHelpersElectionTerm(t *testing.T) {
	zkc := heldCluster(t)
	w := newWorld(t, zkc)
	term, err := election.NewElection(zkc.Session(t), zktest.Root(t)+"/election").Acquire(w.ctx)
	require.NoError(t, err)
	requireSends(t, w, term)

	require.NoError(t, term.Release(w.ctx))
	requireRefuses(t, w, term, fence.ErrNotHeld, election.ErrReleased)
}

// losingHolder is a real lease that is really lost (its session expired on
// the server) at the at-th call of Err, before that call looks: the
// helpers' checks after the first one are exercised by a loss that happens
// after the first check passed.
type losingHolder struct {
	*lock.Lease
	calls atomic.Int32
	at    int32
	lose  func() error
	lost  atomic.Bool
	err   error
}

func (h *losingHolder) Err() error {
	if h.calls.Add(1) == h.at {
		h.err = h.lose()
		h.lost.Store(true)
	}
	return h.Lease.Err()
}

// newLosingHolder acquires a lease on a session of its own, lost when Err
// is called for the at-th time.
func newLosingHolder(t *testing.T, zkc *zktest.Cluster, ctx context.Context, at int32) *losingHolder {
	t.Helper()
	sess := zkc.Session(t, loseOnSessionEnd)
	lease, err := lock.NewMutex(sess, zktest.Root(t)+"/lock").Acquire(ctx)
	require.NoError(t, err)
	h := &losingHolder{Lease: lease, at: at}
	h.lose = func() error {
		id, passwd := sess.Credentials()
		if err := zkc.TryExpireID(id, passwd); err != nil {
			return err
		}
		select {
		case <-lease.Done():
			return nil
		case <-time.After(heldPatience):
			return fmt.Errorf("lease not over %v after its session expired", heldPatience)
		}
	}
	return h
}

func (h *losingHolder) requireLost(t *testing.T) {
	t.Helper()
	require.True(t, h.lost.Load(), "Err was called %d times, the loss was due at call %d", h.calls.Load(), h.at)
	require.NoError(t, h.err)
	require.ErrorIs(t, h.Lease.Err(), recipes.ErrExpired)
}

func requireLostErr(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, fence.ErrNotHeld)
	require.ErrorIs(t, err, lock.ErrLost)
	require.ErrorIs(t, err, recipes.ErrExpired)
}

// TestHeldChecksAgainBeforeWriting: each helper that waits or talks to a
// server between its first check and its write checks again right before
// the write; here the lease is lost just after the first check passed.
func TestHeldChecksAgainBeforeWriting(t *testing.T) {
	zkc := heldCluster(t)
	w := newWorld(t, zkc)

	t.Run("Memory.DoHeld", func(t *testing.T) {
		h := newLosingHolder(t, zkc, w.ctx, 2) // 1: DoHeld's check; 2: under the resource's lock
		r := w.resource()
		err := w.mem.DoHeld(r, h, func() error { w.wrote[r] = true; return nil })
		h.requireLost(t)
		requireLostErr(t, err)
		require.False(t, w.wrote[r], "write ran for a lost lease")
		tok, err := w.mem.Highest(w.ctx, r)
		require.NoError(t, err)
		require.Zero(t, tok, "token recorded for a lost lease")
	})

	t.Run("Postgres.InTxHeld/BeforeUpsert", func(t *testing.T) {
		h := newLosingHolder(t, zkc, w.ctx, 2) // 1: InTxHeld's check; 2: before the upsert
		r := w.resource()
		called := false
		err := w.pg.InTxHeld(w.ctx, nil, r, "held-test", h, func(tx *sql.Tx) error { called = true; return nil })
		h.requireLost(t)
		requireLostErr(t, err)
		require.False(t, called, "fn ran for a lost lease")
		tok, err := w.pg.Highest(w.ctx, r)
		require.NoError(t, err)
		require.Zero(t, tok, "token recorded for a lost lease")
	})

	t.Run("ZooKeeper.AcceptHeld/Create", func(t *testing.T) {
		h := newLosingHolder(t, zkc, w.ctx, 2) // 1: AcceptHeld's check; 2: before creating the node
		r := w.resource()
		err := w.zkc.AcceptHeld(w.ctx, r, h)
		h.requireLost(t)
		requireLostErr(t, err)
		_, exists := w.znodeToken(t, r)
		require.False(t, exists, "token node created for a lost lease")
	})

	t.Run("ZooKeeper.AcceptHeld/Set", func(t *testing.T) {
		h := newLosingHolder(t, zkc, w.ctx, 2) // 1: AcceptHeld's check; 2: before the versioned set
		r := w.resource()
		require.NoError(t, w.zkc.Accept(w.ctx, r, 1))
		err := w.zkc.AcceptHeld(w.ctx, r, h)
		h.requireLost(t)
		requireLostErr(t, err)
		tok, _ := w.znodeToken(t, r)
		require.Equal(t, recipes.Token(1), tok, "token written for a lost lease")
	})
}

// TestInTxHeldRollsBackWhenLostDuringFn: a lease lost while fn runs is
// noticed before the commit, which rolls back fn's writes and the token.
func TestInTxHeldRollsBackWhenLostDuringFn(t *testing.T) {
	zkc := heldCluster(t)
	w := newWorld(t, zkc)
	sess := zkc.Session(t, loseOnSessionEnd)
	lease, err := lock.NewMutex(sess, zktest.Root(t)+"/lock").Acquire(w.ctx)
	require.NoError(t, err)
	r := w.resource()
	err = w.pg.InTxHeld(w.ctx, nil, r, "held-test", lease, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(w.ctx, `INSERT INTO `+w.dataTable+` (resource, token) VALUES ($1, $2)`, r, int64(lease.Token())); err != nil {
			return err
		}
		expire(t, zkc, sess, lease.Done())
		return nil
	})
	requireLostErr(t, err)
	assert.Empty(t, w.dataRows(t, r), "fn's write committed for a lost lease")
	tok, err := w.pg.Highest(w.ctx, r)
	require.NoError(t, err)
	assert.Zero(t, tok, "token committed for a lost lease")
}
