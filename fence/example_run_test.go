package fence_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/zkrecipes/zkrecipes/fence"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

func exampleSession(ctx context.Context) *recipes.Session {
	sess, err := recipes.Connect(ctx, zktest.ExampleServers()) // your ensemble, e.g. []string{"zk1:2181"}
	if err != nil {
		panic(err)
	}
	return sess
}

// exampleLease acquires the mutex at path on sess.
func exampleLease(ctx context.Context, sess *recipes.Session, path string) *lock.Lease {
	l, err := lock.NewMutex(sess, path).Acquire(ctx)
	if err != nil {
		panic(err)
	}
	return l
}

// Tokens kept in ZooKeeper, for a resource that cannot keep them itself:
// once the second holder has written, the first holder's late write is
// rejected.
func ExampleZooKeeper() {
	ctx := context.Background()
	sess := exampleSession(ctx)
	defer sess.Close()
	fences := fence.NewZooKeeper(sess, "/examples/fences")

	first := exampleLease(ctx, sess, "/examples/locks/report")
	tok1 := first.Token() // sent with the first holder's writes
	fmt.Println("first holder writes:", fences.Accept(ctx, "bucket/report.csv", tok1))
	if err := first.Release(ctx); err != nil { // or lost, unbeknownst to its holder
		panic(err)
	}

	second := exampleLease(ctx, sess, "/examples/locks/report")
	defer second.Release(ctx)
	tok2 := second.Token()
	fmt.Println("second holder writes:", fences.Accept(ctx, "bucket/report.csv", tok2))

	err := fences.Accept(ctx, "bucket/report.csv", tok1) // the first holder, too late
	fmt.Println("late write rejected:", errors.Is(err, fence.ErrStale))
	highest, err := fences.Highest(ctx, "bucket/report.csv")
	fmt.Println("highest is the second's:", highest == tok2, err)
	// Output:
	// first holder writes: <nil>
	// second holder writes: <nil>
	// late write rejected: true
	// highest is the second's: true <nil>
}

// AcceptHeld is Accept for the writer itself, sending the lease rather than
// its token: a lease that is no longer held records nothing.
func ExampleZooKeeper_AcceptHeld() {
	ctx := context.Background()
	sess := exampleSession(ctx)
	defer sess.Close()
	fences := fence.NewZooKeeper(sess, "/examples/fences")

	l := exampleLease(ctx, sess, "/examples/locks/invoices")
	fmt.Println("while held:", fences.AcceptHeld(ctx, "invoices", l))
	if err := l.Release(ctx); err != nil {
		panic(err)
	}
	err := fences.AcceptHeld(ctx, "invoices", l)
	fmt.Println("after release:", errors.Is(err, fence.ErrNotHeld), errors.Is(err, lock.ErrReleased))
	// Output:
	// while held: <nil>
	// after release: true true
}

// DoHeld runs a write under the token check of a real lease, and refuses a
// lease that is no longer held: the write does not run.
func ExampleMemory_DoHeld() {
	ctx := context.Background()
	sess := exampleSession(ctx)
	defer sess.Close()
	var guard fence.Memory
	config := map[string]string{}

	l := exampleLease(ctx, sess, "/examples/locks/config")
	write := func(v string) error {
		return guard.DoHeld("config", l, func() error {
			config["value"] = v
			return nil
		})
	}
	fmt.Println("while held:", write("from the holder"))
	highest, _ := guard.Highest(ctx, "config")
	fmt.Println("highest is the lease's token:", highest == l.Token())

	if err := l.Release(ctx); err != nil {
		panic(err)
	}
	err := write("after release")
	fmt.Println("after release:", errors.Is(err, fence.ErrNotHeld), errors.Is(err, lock.ErrReleased))
	fmt.Println(config["value"])
	// Output:
	// while held: <nil>
	// highest is the lease's token: true
	// after release: true true
	// from the holder
}

// Held checks a lease right before its token leaves by a transport the
// package has no helper for.
func ExampleHeld() {
	ctx := context.Background()
	sess := exampleSession(ctx)
	defer sess.Close()

	l := exampleLease(ctx, sess, "/examples/locks/queue")
	tok, err := fence.Held(l)
	fmt.Println("held:", tok == l.Token(), err)
	if err := l.Release(ctx); err != nil {
		panic(err)
	}
	_, err = fence.Held(l)
	fmt.Println("after release:", errors.Is(err, fence.ErrNotHeld), errors.Is(err, lock.ErrReleased))
	var nh *fence.NotHeldError
	fmt.Println("names the token not sent:", errors.As(err, &nh) && nh.Token == l.Token())
	// Output:
	// held: true <nil>
	// after release: true true
	// names the token not sent: true
}

// fencedServer is a fenced HTTP endpoint that reports the token it accepted
// for each request on accepted.
func fencedServer(guard *fence.Memory, accepted chan<- recipes.Token) *httptest.Server {
	return httptest.NewServer(fence.Middleware(guard, func(r *http.Request) string { return r.URL.Path })(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, _ := fence.TokenFrom(r.Context())
			accepted <- tok
		})))
}

// A client whose Transport sends the lease's token with every request, and
// sends nothing once the lease is no longer held.
func ExampleTransport() {
	ctx := context.Background()
	sess := exampleSession(ctx)
	defer sess.Close()
	var guard fence.Memory
	accepted := make(chan recipes.Token, 1)
	srv := fencedServer(&guard, accepted)
	defer srv.Close()

	l := exampleLease(ctx, sess, "/examples/locks/jobs-42")
	client := &http.Client{Transport: &fence.Transport{Holder: l, Base: srv.Client().Transport}}
	resp, err := client.Post(srv.URL+"/jobs/42", "text/plain", nil)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("while held:", resp.StatusCode, "with the lease's token:", <-accepted == l.Token())

	if err := l.Release(ctx); err != nil {
		panic(err)
	}
	_, err = client.Post(srv.URL+"/jobs/42", "text/plain", nil)
	fmt.Println("after release, not sent:", errors.Is(err, fence.ErrNotHeld), errors.Is(err, lock.ErrReleased))
	// Output:
	// while held: 200 with the lease's token: true
	// after release, not sent: true true
}

// SetHeaderHeld puts the lease's token in a request's header if the lease is
// still held, and takes it out otherwise; the server reads it back with
// FromHeader (Middleware does).
func ExampleSetHeaderHeld() {
	ctx := context.Background()
	sess := exampleSession(ctx)
	defer sess.Close()
	var guard fence.Memory
	accepted := make(chan recipes.Token, 1)
	srv := fencedServer(&guard, accepted)
	defer srv.Close()

	l := exampleLease(ctx, sess, "/examples/locks/jobs-43")
	req, err := http.NewRequest(http.MethodPut, srv.URL+"/jobs/43", nil)
	if err != nil {
		panic(err)
	}
	fmt.Println("set:", fence.SetHeaderHeld(req.Header, l))
	tok, ok, err := fence.FromHeader(req.Header)
	fmt.Println("in the header:", tok == l.Token(), ok, err)
	resp, err := srv.Client().Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("server:", resp.StatusCode, "accepted the lease's token:", <-accepted == l.Token())

	if err := l.Release(ctx); err != nil {
		panic(err)
	}
	err = fence.SetHeaderHeld(req.Header, l)
	_, ok, _ = fence.FromHeader(req.Header)
	fmt.Println("after release:", errors.Is(err, fence.ErrNotHeld), "header left:", ok)
	// Output:
	// set: <nil>
	// in the header: true true <nil>
	// server: 200 accepted the lease's token: true
	// after release: true header left: false
}
