package fence

// Test helpers of package fence for the external tests (package fence_test).
var (
	PGDB    = pgDB    // a *sql.DB on the test PostgreSQL server
	PGTable = pgTable // a table name unique to the call
)
