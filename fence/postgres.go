package fence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/zkrecipes/zkrecipes/recipes"
)

// DefaultTable is the table NewPostgres uses when given "".
const DefaultTable = "locks"

// Schema is the table the Postgres checker keeps its tokens in; %s is the
// table name. CreateTable runs it with the checker's table.
const Schema = `CREATE TABLE IF NOT EXISTS %s (
	resource      TEXT PRIMARY KEY,
	owner_id      TEXT,
	fencing_token BIGINT NOT NULL,
	updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
)`

// Postgres is a Checker that keeps the highest token of each resource in a
// PostgreSQL table (see Schema), one row per resource. It is the checker
// for data that lives in the same database: InTx runs the application's
// own writes in the transaction that accepts the token, so the check and
// the write commit together or not at all. It is safe for concurrent use.
//
// An accept is one statement (the table named locks here):
//
//	INSERT INTO locks AS l (resource, owner_id, fencing_token) VALUES ($1, $2, $3)
//	ON CONFLICT (resource) DO UPDATE
//	   SET fencing_token = EXCLUDED.fencing_token, owner_id = EXCLUDED.owner_id, updated_at = now()
//	 WHERE l.fencing_token <= EXCLUDED.fencing_token
//
// It inserts the row, or updates it if the stored token is not larger, or
// changes nothing: one row affected means accepted, none means stale. The
// statement is atomic under concurrency: a concurrent insert of the same
// resource turns into the update, and the update locks the row and, under
// READ COMMITTED (PostgreSQL's default), re-evaluates the WHERE clause on the
// newest committed version of the row after waiting for any transaction
// that holds its lock. Under REPEATABLE READ or SERIALIZABLE a concurrent
// change makes it fail with a serialization error (SQLSTATE 40001) instead,
// which rejects the write too; retry it in a new transaction.
//
// Postgres uses database/sql and works with any PostgreSQL driver (the tests
// use github.com/jackc/pgx/v5/stdlib). Its SQL uses $n placeholders.
type Postgres struct {
	db    *sql.DB
	table string
	err   error // a bad argument to NewPostgres, returned by every method

	upsert, highest string
}

var _ Checker = (*Postgres)(nil)

// NewPostgres returns a checker on table ("" means DefaultTable) in db. The
// table name must be a plain SQL identifier, optionally schema-qualified
// ("fencing.tokens"): ASCII letters, digits and '_', not starting with a
// digit, at most 63 bytes per part. It is used unquoted, so PostgreSQL folds
// it to lower case. Create the table with CreateTable or Schema. Bad
// arguments are reported by its methods, like a recipe's.
func NewPostgres(db *sql.DB, table string) *Postgres {
	if table == "" {
		table = DefaultTable
	}
	if db == nil {
		return &Postgres{table: table, err: errors.New("fence: nil *sql.DB")}
	}
	if err := validIdent(table); err != nil {
		return &Postgres{table: table, err: err}
	}
	return &Postgres{
		db:    db,
		table: table,
		upsert: `INSERT INTO ` + table + ` AS l (resource, owner_id, fencing_token) VALUES ($1, $2, $3)
ON CONFLICT (resource) DO UPDATE
   SET fencing_token = EXCLUDED.fencing_token, owner_id = EXCLUDED.owner_id, updated_at = now()
 WHERE l.fencing_token <= EXCLUDED.fencing_token`,
		highest: `SELECT fencing_token FROM ` + table + ` WHERE resource = $1`,
	}
}

func validIdent(name string) error {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return fmt.Errorf("fence: table name %q: at most one '.' (schema.table)", name)
	}
	for _, p := range parts {
		if p == "" || len(p) > 63 {
			return fmt.Errorf("fence: table name %q: each part must have 1 to 63 bytes", name)
		}
		for i := 0; i < len(p); i++ {
			c := p[i]
			ok := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9'
			if !ok {
				return fmt.Errorf("fence: table name %q is not a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*)", name)
			}
		}
	}
	return nil
}

// Table returns the table name.
func (p *Postgres) Table() string { return p.table }

// CreateTable creates the table (Schema) if it does not exist.
func (p *Postgres) CreateTable(ctx context.Context) error {
	if p.err != nil {
		return p.err
	}
	if _, err := p.db.ExecContext(ctx, fmt.Sprintf(Schema, p.table)); err != nil {
		return fmt.Errorf("fence: create table %s: %w", p.table, err)
	}
	return nil
}

// Accept implements Checker; the row's owner_id becomes NULL. See
// AcceptOwner.
func (p *Postgres) Accept(ctx context.Context, resource string, tok recipes.Token) error {
	return p.AcceptOwner(ctx, resource, "", tok)
}

// AcceptOwner is Accept that also records owner (a free-form holder
// identity, for operators; "" stores NULL) in the row's owner_id when tok is
// accepted. It runs the one fenced upsert statement (see Postgres) in its
// own implicit transaction.
func (p *Postgres) AcceptOwner(ctx context.Context, resource, owner string, tok recipes.Token) error {
	return p.accept(ctx, p.db, resource, owner, tok)
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (p *Postgres) accept(ctx context.Context, q querier, resource, owner string, tok recipes.Token) error {
	if p.err != nil {
		return p.err
	}
	if err := checkArgs(resource, tok); err != nil {
		return err
	}
	var ownerArg any
	if owner != "" {
		ownerArg = owner
	}
	res, err := q.ExecContext(ctx, p.upsert, resource, ownerArg, int64(tok))
	if err != nil {
		return fmt.Errorf("fence: accept token %s for %q: %w", tok, resource, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("fence: accept token %s for %q: %w", tok, resource, err)
	}
	if n == 1 {
		return nil
	}
	// Rejected: the row holds a larger token, which can only have grown since.
	highest, err := p.highestOn(ctx, q, resource)
	if err != nil {
		return fmt.Errorf("fence: token %s for %q rejected as stale; reading the highest: %w", tok, resource, err)
	}
	return stale(resource, tok, highest)
}

// Highest implements Checker.
func (p *Postgres) Highest(ctx context.Context, resource string) (recipes.Token, error) {
	if p.err != nil {
		return 0, p.err
	}
	tok, err := p.highestOn(ctx, p.db, resource)
	if err != nil {
		return 0, fmt.Errorf("fence: highest token for %q: %w", resource, err)
	}
	return tok, nil
}

func (p *Postgres) highestOn(ctx context.Context, q querier, resource string) (recipes.Token, error) {
	var n int64
	err := q.QueryRowContext(ctx, p.highest, resource).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return recipes.Token(n), err
}

// InTx runs fn in a transaction fenced by tok: it begins a transaction on
// the checker's database, runs the fenced upsert for resource in it (as
// AcceptOwner), then fn, and commits only if both succeed. If tok is stale
// it rolls back without calling fn and returns a *StaleError; if fn fails it
// rolls back (the token is not recorded either) and returns fn's error. fn
// must not commit or roll back tx itself.
//
// Why it is atomic: the upsert locks the resource's row in the token table
// (a new row too, through its unique index entry), and PostgreSQL holds row
// locks until the transaction ends. So while fn runs, every other InTx or
// Accept on the same resource waits at its upsert; when we commit, each of
// them re-checks against the token we committed (READ COMMITTED) and goes
// ahead only if its token is not smaller. A stale holder therefore either
// is rejected before fn runs, or — if it got the lock first — commits its
// writes before the newer holder's transaction starts writing; its writes
// can never land after a newer token's. This covers every write fn makes in
// tx, whatever tables they touch, provided all writers of that data go
// through InTx with the same resource name. Writes made outside tx (on other
// connections) are not fenced.
//
// If Commit fails the outcome is unknown to the client (the commit may have
// happened), as with any transaction. Transactions on one resource are
// serialised: keep fn short. With opts (may be nil) the caller picks the
// isolation level; see Postgres for what REPEATABLE READ and SERIALIZABLE
// change.
func (p *Postgres) InTx(ctx context.Context, opts *sql.TxOptions, resource, owner string, tok recipes.Token, fn func(tx *sql.Tx) error) (err error) {
	return p.inTx(ctx, opts, resource, owner, tok, nil, fn)
}

// InTxHeld is InTx with holder's token that also refuses a holder that is
// no longer held. It calls holder.Err before it begins the transaction,
// again right before the fenced upsert (the first statement after BEGIN)
// and again right before the commit. If the first check fails nothing is
// sent to the database; if a later one fails the transaction is rolled
// back (fn's writes and the token with it, fn not called if the upsert was
// not run). Either way it returns a *NotHeldError wrapping ErrNotHeld and
// holder's Err, so errors.Is(err, lock.ErrLost) holds for a lost
// lock.Lease.
//
// The check before the commit keeps a holder that learned of its loss while
// fn ran from committing. It cannot close the window between the check and
// the commit reaching the server; the fenced upsert still protects the data
// then: a newer holder's transaction waits for ours, and ours cannot commit
// after a newer token's.
func (p *Postgres) InTxHeld(ctx context.Context, opts *sql.TxOptions, resource, owner string, holder Holder, fn func(tx *sql.Tx) error) error {
	if _, err := held(resource, holder); err != nil {
		return err
	}
	return p.inTx(ctx, opts, resource, owner, holder.Token(), holder, fn)
}

func (p *Postgres) inTx(ctx context.Context, opts *sql.TxOptions, resource, owner string, tok recipes.Token, holder Holder, fn func(tx *sql.Tx) error) (err error) {
	if p.err != nil {
		return p.err
	}
	if err := checkArgs(resource, tok); err != nil {
		return err
	}
	check := func() error {
		if holder == nil {
			return nil
		}
		_, err := held(resource, holder)
		return err
	}
	tx, err := p.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("fence: begin transaction for %q: %w", resource, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			_ = tx.Rollback()
			panic(r)
		}
	}()
	if err := check(); err != nil {
		return err
	}
	if err := p.accept(ctx, tx, resource, owner, tok); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := check(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("fence: commit fenced transaction for %q with token %s: %w", resource, tok, err)
	}
	return nil
}
