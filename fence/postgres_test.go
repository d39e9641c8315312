package fence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// pgChecker creates a checker on a fresh table, with a trigger that logs
// every row the table's upserts write into <table>_log. The trigger runs
// inside the upsert while it holds the row lock, and a sequence numbers the
// entries, so the log is the order PostgreSQL applied the accepts in.
func pgChecker(t *testing.T, db *sql.DB) (*Postgres, func(t *testing.T, resource string) []recipes.Token) {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	p := NewPostgres(db, pgTable(t))
	require.NoError(t, p.CreateTable(ctx))
	require.NoError(t, p.CreateTable(ctx), "CreateTable is idempotent")
	tb := p.Table()
	for _, q := range []string{
		`CREATE TABLE ` + tb + `_log (seq BIGSERIAL PRIMARY KEY, resource TEXT NOT NULL, token BIGINT NOT NULL)`,
		`CREATE FUNCTION ` + tb + `_logf() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN INSERT INTO ` + tb + `_log (resource, token) VALUES (NEW.resource, NEW.fencing_token); RETURN NEW; END $$`,
		`CREATE TRIGGER ` + tb + `_logt AFTER INSERT OR UPDATE ON ` + tb + ` FOR EACH ROW EXECUTE FUNCTION ` + tb + `_logf()`,
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	return p, func(t *testing.T, r string) []recipes.Token {
		rows, err := db.QueryContext(ctx, `SELECT token FROM `+tb+`_log WHERE resource = $1 ORDER BY seq`, r)
		require.NoError(t, err)
		defer rows.Close()
		var log []recipes.Token
		for rows.Next() {
			var tok int64
			require.NoError(t, rows.Scan(&tok))
			log = append(log, recipes.Token(tok))
		}
		require.NoError(t, rows.Err())
		return log
	}
}

func TestPostgres(t *testing.T) {
	runSuite(t, suiteConfig{writers: 32, perWriter: 150, resources: 3}, func(t *testing.T) subject {
		db := pgDB(t)
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(32)
		p, log := pgChecker(t, db)
		return subject{c: p, log: log}
	})
}

func TestPostgresTableNames(t *testing.T) {
	db, err := sql.Open("pgx", "host=/nonexistent") // never connects
	require.NoError(t, err)
	defer db.Close()
	for _, ok := range []string{"", "locks", "Fence_Tokens", "app.locks", "_x1"} {
		assert.NoError(t, NewPostgres(db, ok).err, ok)
	}
	for _, bad := range []string{"1locks", "locks;DROP TABLE x", `"locks"`, "a.b.c", ".locks", "lo cks", "läcks",
		"x23456789012345678901234567890123456789012345678901234567890abcd"} {
		err := NewPostgres(db, bad).Accept(context.Background(), "r", 1)
		assert.ErrorContains(t, err, "table name", bad)
	}
	_, err = NewPostgres(nil, "").Highest(context.Background(), "r")
	assert.ErrorContains(t, err, "nil *sql.DB")
}

// accountsTable creates an application table for InTx to guard.
func accountsTable(t *testing.T, db *sql.DB) string {
	name := pgTable(t) + "_accounts"
	_, err := db.ExecContext(ctxT(t, 10*time.Second), `CREATE TABLE `+name+` (
		id BIGINT PRIMARY KEY, balance BIGINT NOT NULL, last_token BIGINT NOT NULL DEFAULT 0)`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctxT(t, 10*time.Second), `INSERT INTO `+name+` (id, balance) VALUES (1, 0), (2, 0)`)
	require.NoError(t, err)
	return name
}

func TestPostgresInTx(t *testing.T) {
	db := pgDB(t)
	ctx := ctxT(t, time.Minute)
	p, _ := pgChecker(t, db)
	acc := accountsTable(t, db)
	balance := func(id int) int64 {
		var b int64
		require.NoError(t, db.QueryRowContext(ctx, `SELECT balance FROM `+acc+` WHERE id = $1`, id).Scan(&b))
		return b
	}
	setBalance := func(tok recipes.Token, v int64) func(*sql.Tx) error {
		return func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE `+acc+` SET balance = $1, last_token = $2 WHERE id = 1`, v, int64(tok))
			return err
		}
	}

	require.NoError(t, p.InTx(ctx, nil, "accounts/1", "old", 10, setBalance(10, 100)))
	require.NoError(t, p.InTx(ctx, nil, "accounts/1", "new", 20, setBalance(20, 200)))
	// The old holder wakes up and writes: rejected, its UPDATE never runs.
	ran := false
	err := p.InTx(ctx, nil, "accounts/1", "old", 10, func(tx *sql.Tx) error { ran = true; return setBalance(10, 999)(tx) })
	var se *StaleError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, StaleError{Resource: "accounts/1", Token: 10, Highest: 20}, *se)
	assert.False(t, ran)
	assert.Equal(t, int64(200), balance(1))

	var owner string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT owner_id FROM `+p.Table()+` WHERE resource = 'accounts/1'`).Scan(&owner))
	assert.Equal(t, "new", owner)

	// fn fails: everything rolls back, the token is not recorded either.
	boom := errors.New("boom")
	err = p.InTx(ctx, nil, "accounts/1", "newer", 30, func(tx *sql.Tx) error {
		if err := setBalance(30, 300)(tx); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.Equal(t, int64(200), balance(1))
	h, err := p.Highest(ctx, "accounts/1")
	require.NoError(t, err)
	assert.Equal(t, recipes.Token(20), h)

	// A panic in fn rolls back too.
	require.Panics(t, func() {
		_ = p.InTx(ctx, nil, "accounts/1", "x", 40, func(tx *sql.Tx) error { panic("p") })
	})
	h, _ = p.Highest(ctx, "accounts/1")
	assert.Equal(t, recipes.Token(20), h)

	// Equal token: the same holder writes again.
	require.NoError(t, p.InTx(ctx, nil, "accounts/1", "new", 20, setBalance(20, 201)))
	assert.Equal(t, int64(201), balance(1))

	// Serializable works too.
	require.NoError(t, p.InTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable}, "accounts/1", "new", 21, setBalance(21, 210)))
	assert.Equal(t, int64(210), balance(1))
}

// While a holder's InTx runs, a newer holder's waits on the row lock; the
// older commits first, then the newer goes ahead and the older is fenced.
func TestPostgresInTxBlocksNewerUntilCommit(t *testing.T) {
	db := pgDB(t)
	ctx := ctxT(t, time.Minute)
	p, log := pgChecker(t, db)
	inside, release := make(chan struct{}), make(chan struct{})
	errOld := make(chan error, 1)
	go func() {
		errOld <- p.InTx(ctx, nil, "r", "old", 5, func(tx *sql.Tx) error {
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	errNew := make(chan error, 1)
	go func() { errNew <- p.AcceptOwner(ctx, "r", "new", 6) }()
	select {
	case err := <-errNew:
		t.Fatalf("newer accept did not wait for the open fenced transaction: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-errOld)
	require.NoError(t, <-errNew)
	assert.Equal(t, []recipes.Token{5, 6}, log(t, "r"))
	require.ErrorIs(t, p.InTx(ctx, nil, "r", "old", 5, func(*sql.Tx) error { return nil }), ErrStale)
}

// Many holders write one account through InTx with interleaved tokens: the
// application's own writes, numbered by a sequence inside the transaction,
// only ever carry non-decreasing tokens, and no stale holder's UPDATE lands.
func TestPostgresInTxConcurrent(t *testing.T) {
	db := pgDB(t)
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	ctx := ctxT(t, 2*time.Minute)
	p, _ := pgChecker(t, db)
	acc := accountsTable(t, db)
	_, err := db.ExecContext(ctx, `CREATE TABLE `+acc+`_applied (seq BIGSERIAL PRIMARY KEY, token BIGINT NOT NULL)`)
	require.NoError(t, err)

	var mu sync.Mutex
	gen := int64(100)
	var applied, stale int
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				mu.Lock()
				if rand.IntN(4) == 0 {
					gen++
				}
				tok := recipes.Token(gen - rand.Int64N(3))
				mu.Unlock()
				err := p.InTx(ctx, nil, "accounts/1", fmt.Sprint("w", w), tok, func(tx *sql.Tx) error {
					var last int64
					if err := tx.QueryRowContext(ctx, `SELECT last_token FROM `+acc+` WHERE id = 1`).Scan(&last); err != nil {
						return err
					}
					if last > int64(tok) {
						return fmt.Errorf("fenced transaction with token %d sees newer token %d already written", tok, last)
					}
					if _, err := tx.ExecContext(ctx, `UPDATE `+acc+` SET balance = balance + 1, last_token = $1 WHERE id = 1`, int64(tok)); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, `INSERT INTO `+acc+`_applied (token) VALUES ($1)`, int64(tok))
					return err
				})
				mu.Lock()
				switch {
				case err == nil:
					applied++
				case errors.Is(err, ErrStale):
					stale++
				default:
					t.Error(err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	rows, err := db.QueryContext(ctx, `SELECT token FROM `+acc+`_applied ORDER BY seq`)
	require.NoError(t, err)
	defer rows.Close()
	var seq []int64
	for rows.Next() {
		var tok int64
		require.NoError(t, rows.Scan(&tok))
		seq = append(seq, tok)
	}
	require.NoError(t, rows.Err())
	require.Len(t, seq, applied)
	for i := 1; i < len(seq); i++ {
		require.LessOrEqual(t, seq[i-1], seq[i], "application writes out of token order at %d", i)
	}
	var bal, last int64
	require.NoError(t, db.QueryRowContext(ctx, `SELECT balance, last_token FROM `+acc+` WHERE id = 1`).Scan(&bal, &last))
	assert.Equal(t, int64(applied), bal, "exactly the accepted transactions applied their UPDATE")
	h, err := p.Highest(ctx, "accounts/1")
	require.NoError(t, err)
	assert.Equal(t, int64(h), last)
	t.Logf("32 writers: %d fenced transactions committed, %d rejected as stale", applied, stale)
	assert.Positive(t, stale)
}

// The single-statement form from the package documentation.
func TestPostgresSingleStatementGuard(t *testing.T) {
	db := pgDB(t)
	ctx := ctxT(t, time.Minute)
	p, _ := pgChecker(t, db)
	acc := accountsTable(t, db)
	q := `WITH fence AS (
	    INSERT INTO ` + p.Table() + ` AS l (resource, owner_id, fencing_token) VALUES ($3, $4, $5)
	    ON CONFLICT (resource) DO UPDATE
	       SET fencing_token = EXCLUDED.fencing_token, owner_id = EXCLUDED.owner_id, updated_at = now()
	     WHERE l.fencing_token <= EXCLUDED.fencing_token
	    RETURNING 1)
	UPDATE ` + acc + ` SET balance = $1 WHERE id = $2 AND EXISTS (SELECT FROM fence)`
	upd := func(balance int64, tok recipes.Token) int64 {
		res, err := db.ExecContext(ctx, q, balance, 2, "accounts/2", "w", int64(tok))
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		return n
	}
	assert.Equal(t, int64(1), upd(100, 7))
	assert.Equal(t, int64(1), upd(150, 7), "equal token")
	assert.Equal(t, int64(1), upd(200, 8))
	assert.Equal(t, int64(0), upd(999, 7), "stale token: no row updated")
	var b int64
	require.NoError(t, db.QueryRowContext(ctx, `SELECT balance FROM `+acc+` WHERE id = 2`).Scan(&b))
	assert.Equal(t, int64(200), b)
	require.ErrorIs(t, p.Accept(ctx, "accounts/2", 7), ErrStale, "the statement used the checker's table")
}

func TestPostgresContextCancelled(t *testing.T) {
	db := pgDB(t)
	p, _ := pgChecker(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.Accept(ctx, "r", 1)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrStale)
	assert.ErrorIs(t, err, context.Canceled)
}
