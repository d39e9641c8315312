package fence_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/zkrecipes/zkrecipes/fence"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// A service guards its own state: each write runs under the token check.
func ExampleMemory_Do() {
	var guard fence.Memory
	config := map[string]string{}

	write := func(tok recipes.Token, v string) error {
		return guard.Do("config", tok, func() error {
			config["value"] = v
			return nil
		})
	}
	fmt.Println(write(100, "from the first holder"))
	fmt.Println(write(200, "from the second holder"))
	err := write(100, "from the first holder, after a long GC pause")
	fmt.Println(errors.Is(err, fence.ErrStale), err)
	fmt.Println(config["value"])
	// Output:
	// <nil>
	// <nil>
	// true fence: stale fencing token for "config": token 100 is older than the highest accepted 200
	// from the second holder
}

// A fenced HTTP endpoint: clients send their lock's token in the
// Fencing-Token header.
func ExampleMiddleware() {
	var guard fence.Memory
	h := fence.Middleware(&guard, func(r *http.Request) string { return r.URL.Path })(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, _ := fence.TokenFrom(r.Context())
			fmt.Fprintf(w, "written with token %s", tok)
		}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, tok := range []recipes.Token{7, 9, 7, 0} {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/jobs/42", nil)
		if tok != 0 {
			fence.SetHeader(req.Header, tok)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %s", resp.StatusCode, body)
		if resp.StatusCode == http.StatusOK {
			fmt.Println()
		}
	}
	// Output:
	// 200 written with token 7
	// 200 written with token 9
	// 409 fence: stale fencing token for "/jobs/42": token 7 is older than the highest accepted 9
	// 428 fence: Fencing-Token header required to write "/jobs/42"
}

// The lock holder's UPDATE commits only if its token is still the newest.
// This example needs a PostgreSQL database (DATABASE_URL), so it is compiled
// but not run; the package's tests exercise the same calls against a
// throwaway server.
func ExamplePostgres_InTx() {
	ctx := context.Background()
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	pg := fence.NewPostgres(db, "locks")
	if err := pg.CreateTable(ctx); err != nil {
		log.Fatal(err)
	}

	var lease *lock.Lease // from lock.NewMutex(sess, "/locks/accounts-42").Acquire(ctx)
	err = pg.InTx(ctx, nil, "accounts/42", "worker-7", lease.Token(), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE accounts SET balance = balance - $1 WHERE id = $2`, 10, 42)
		return err
	})
	switch {
	case errors.Is(err, fence.ErrStale):
		// We lost the lock and a newer holder has written: stop.
	case err != nil:
		log.Fatal(err)
	}
}

// A restarted service restores the highest tokens it had accepted (Set)
// before it takes writes again, so a stale holder stays fenced off.
func ExampleMemory_Set() {
	ctx := context.Background()
	var guard fence.Memory
	guard.Set("config", 200) // from the service's saved state
	err := guard.Accept(ctx, "config", 100)
	fmt.Println("stale holder:", errors.Is(err, fence.ErrStale))
	var stale *fence.StaleError
	if errors.As(err, &stale) {
		fmt.Println("rejected", stale.Token, "highest", stale.Highest)
	}
	fmt.Println("newer holder:", guard.Accept(ctx, "config", 300))
	highest, _ := guard.Highest(ctx, "config")
	fmt.Println("highest:", highest)
	// Output:
	// stale holder: true
	// rejected 100 highest 200
	// newer holder: <nil>
	// highest: 300
}

// FromHeader reads the token a client sent (SetHeader, SetHeaderHeld,
// Transport); Middleware does it for fenced handlers.
func ExampleFromHeader() {
	h := http.Header{}
	_, ok, err := fence.FromHeader(h)
	fmt.Println("absent:", ok, err)
	fence.SetHeader(h, 4294967300)
	tok, ok, err := fence.FromHeader(h)
	fmt.Println("sent:", h.Get(fence.Header), "read:", tok, ok, err)
	h.Set(fence.Header, "-1")
	_, _, err = fence.FromHeader(h)
	fmt.Println("malformed:", errors.Is(err, fence.ErrInvalidToken))
	// Output:
	// absent: false <nil>
	// sent: 4294967300 read: 4294967300 true <nil>
	// malformed: true
}
