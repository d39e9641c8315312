package fence

// A throwaway PostgreSQL server for the tests: FENCE_PG_DSN if set, else a
// server started from Debian's postgresql package binaries, shared by the
// tests of this process and stopped by TestMain.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

const envPGDSN = "FENCE_PG_DSN"

var pgServer struct {
	once   sync.Once
	dsn    string
	skip   string // why no server can be started (installation missing)
	err    error  // starting failed
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	failed bool
}

// pgDB opens a *sql.DB on the test server (closed by t.Cleanup).
func pgDB(t *testing.T) *sql.DB {
	t.Helper()
	dsn := os.Getenv(envPGDSN)
	if dsn == "" {
		pgServer.once.Do(startPostgres)
		switch {
		case pgServer.skip != "":
			if v := os.Getenv("ZKTEST_REQUIRE"); v == "1" || v == "true" {
				t.Fatalf("no PostgreSQL (ZKTEST_REQUIRE is set): %s", pgServer.skip)
			}
			t.Skipf("no PostgreSQL: %s", pgServer.skip)
		case pgServer.err != nil:
			t.Fatalf("start PostgreSQL: %v", pgServer.err)
		}
		dsn = pgServer.dsn
		t.Cleanup(func() {
			if t.Failed() {
				pgServer.failed = true
			}
		})
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// pgTable returns a table name unique to this call.
func pgTable(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "fence_" + hex.EncodeToString(b[:])
}

const pgInstructions = "install Debian's postgresql package (sudo apt-get install postgresql, or scripts/ensure-postgres.sh), " +
	"or set " + envPGDSN + " to a server's DSN (e.g. postgres://user:pass@127.0.0.1:5432/db)"

// pgBinDir finds the newest /usr/lib/postgresql/<version>/bin with initdb
// and postgres, else a directory on PATH holding both.
func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "postgres")) {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && isFile(filepath.Join(filepath.Dir(p), "postgres")) {
		return filepath.Dir(p)
	}
	return ""
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func startPostgres() {
	bin := pgBinDir()
	if bin == "" {
		pgServer.skip = "initdb and postgres not found; " + pgInstructions
		return
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			pgServer.skip = "running as root and there is no 'postgres' user to run the server as; " + pgInstructions
			return
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "fence-pg-")
	if err != nil {
		pgServer.err = err
		return
	}
	pgServer.dir = dir
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			pgServer.err = err
			return
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = pgProcAttr(cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		pgServer.err = fmt.Errorf("initdb: %v\n%s", err, out)
		return
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		pgServer.err = err
		return
	}
	defer logf.Close()
	// Unix socket only, in our private directory: no port to collide on.
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir,
		"-c", "listen_addresses=", "-p", "5432", "-c", "max_connections=200",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = pgProcAttr(cred)
	if err := cmd.Start(); err != nil {
		pgServer.err = fmt.Errorf("start postgres: %w", err)
		return
	}
	pgServer.cmd = cmd
	pgServer.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(pgServer.exited) }()

	dsn := fmt.Sprintf("host=%s port=5432 user=postgres dbname=postgres sslmode=disable", dir)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		pgServer.err = err
		return
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			pgServer.dsn = dsn
			return
		}
		select {
		case <-pgServer.exited:
			pgServer.err = fmt.Errorf("postgres exited; log:\n%s", readLog(dir))
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			pgServer.err = fmt.Errorf("postgres did not accept connections within 30s (%v); log:\n%s", err, readLog(dir))
			return
		}
	}
}

func readLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
	return strings.TrimSpace(string(b))
}

// stopPostgres stops the server started by pgDB (fast shutdown) and removes
// its directory, unless a test using it failed.
func stopPostgres() {
	if pgServer.cmd != nil {
		_ = pgServer.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-pgServer.exited:
		case <-time.After(10 * time.Second):
			_ = pgServer.cmd.Process.Kill()
			<-pgServer.exited
		}
	}
	if pgServer.dir == "" {
		return
	}
	if pgServer.failed || pgServer.err != nil {
		fmt.Fprintf(os.Stderr, "fence: PostgreSQL test server kept in %s\n", pgServer.dir)
		return
	}
	if err := os.RemoveAll(pgServer.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "fence: remove %s: %v\n", pgServer.dir, err)
	}
}
