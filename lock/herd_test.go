package lock_test

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// TestNoHerd queues 50 waiters behind a holder, each on its own session
// (spread over a 3-node ensemble), and checks on the servers that
//
//   - each contender's node is watched by exactly one other session, the
//     owner of the next contender (and at most by its own session, should a
//     lease watch its own node), and no other path is watched (4lw "wchp"
//     on every server);
//   - each release wakes exactly one waiter, its successor, and delivers
//     exactly the notifications of those watches: the servers'
//     node_deleted_watch_count summary, summed over the ensemble, grows by
//     that much and no other kind of watch fires; the woken waiter takes
//     the lock without reading or watching anything more (the watch count
//     only goes down).
//
// It uses its own ensemble: the watch metrics are server-wide.
func TestNoHerd(t *testing.T) {
	const waiters = 50
	zkc := zktest.StartCluster(t, zktest.Config{Servers: 3})
	root := zktest.Root(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	holder := zkc.Session(t)
	m := lock.NewMutex(holder, root)
	cur, err := m.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type acq struct {
		l   *lock.Lease
		err error
	}
	got := make(chan acq, waiters) // buffered: no goroutine outlives the test
	for range waiters {
		s := zkc.Session(t)
		go func() {
			l, err := lock.NewMutex(s, root).Acquire(ctx)
			got <- acq{l, err}
		}()
	}

	// Every waiter has queued and watches its predecessor.
	var (
		cs       []lock.Contender
		watchers map[string][]int64 // path → watching sessions
	)
	herdWaitFor(t, "every waiter to watch its predecessor", func() (bool, string) {
		var err error
		if cs, err = m.Contenders(ctx); err != nil {
			t.Fatal(err)
		}
		if len(cs) != waiters+1 {
			return false, fmt.Sprintf("%d contenders", len(cs))
		}
		watchers = herdWatchers(t, zkc)
		for i, c := range cs[1:] {
			if !slices.Contains(watchers[root+"/"+cs[i].Name], c.Session) {
				return false, fmt.Sprintf("contender %d not watched by its successor", i)
			}
		}
		return true, ""
	})
	// Each contender's node is watched by its successor and by nobody else
	// but, possibly, its own session (a lease watches its own node to learn
	// when someone else deletes it). No other path is watched.
	selfWatch := slices.Contains(watchers[root+"/"+cs[0].Name], cs[0].Session)
	want := 0
	for i, c := range cs {
		p := root + "/" + c.Name
		if i > 0 {
			want++ // contender i-1's release notifies this one
		}
		got := watchers[p]
		var others []int64
		for _, id := range got {
			if id != c.Session {
				others = append(others, id)
			}
		}
		switch {
		case i < waiters && (len(others) != 1 || others[0] != cs[i+1].Session):
			t.Errorf("contender %d %s is watched by %s: want exactly one other session, its successor 0x%x", i, c.Name, herdHex(others), cs[i+1].Session)
		case i == waiters && len(others) != 0:
			t.Errorf("the last contender %s is watched by %s: want no other session", c.Name, herdHex(others))
		case slices.Contains(got, c.Session) != selfWatch:
			t.Errorf("contender %d %s: own session watches it: %v, the holder's: %v", i, c.Name, !selfWatch, selfWatch)
		}
	}
	for p := range watchers {
		if !strings.HasPrefix(p, root+"/") || strings.Count(p, "/") != strings.Count(root, "/")+1 {
			t.Errorf("unexpected watch on %s by %s", p, herdHex(watchers[p]))
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d contenders; each watched by its successor only (own-node watches: %v)", len(cs), selfWatch)

	// Release the lock down the queue. Releasing contender k deletes its
	// node, which must notify exactly the sessions watching it (itself, if
	// selfWatch, and its successor) and wake exactly one waiter.
	// One connection per server: a sync on each makes that server apply
	// everything committed so far (and fire the watches it triggers)
	// before its counters are read.
	var perServer []*zk.Conn
	for i := range zkc.Addrs() {
		perServer = append(perServer, zkc.ServerConn(t, i))
	}
	caughtUp := func() {
		t.Helper()
		for i, c := range perServer {
			if _, err := c.Sync(root); err != nil {
				t.Fatalf("sync server %d: %v", i, err)
			}
		}
	}
	caughtUp()
	base := herdStats(t, zkc)
	delivered := 0
	for k := 0; k <= waiters; k++ {
		if err := cur.Release(ctx); err != nil {
			t.Fatal(err)
		}
		delivered += len(watchers[root+"/"+cs[k].Name])
		if k < waiters {
			select {
			case a := <-got:
				if a.err != nil {
					t.Fatalf("waiter: %v", a.err)
				}
				if a.l.Path() != root+"/"+cs[k+1].Name {
					t.Fatalf("release %d woke %s, want its successor %s", k, a.l.Path(), cs[k+1].Name)
				}
				cur = a.l
			case <-time.After(10 * time.Second):
				t.Fatalf("release %d woke no waiter", k)
			}
		}
		caughtUp() // every server has applied this release's delete
		st := herdStats(t, zkc)
		if d := st.deleted - base.deleted; d != delivered {
			t.Fatalf("after %d releases %d node-deleted notifications were delivered, want %d", k+1, d, delivered)
		}
		if o := st.other - base.other; o != 0 {
			t.Fatalf("after %d releases %d other watch notifications (created/changed/children), want 0", k+1, o)
		}
		if st.watches != base.watches-delivered {
			t.Fatalf("after %d releases %d watches remain, want %d", k+1, st.watches, base.watches-delivered)
		}
		// A second waiter woken by this release would re-list and could be
		// granted within a round trip or two: give it herdQuiet to show.
		select {
		case a := <-got:
			t.Fatalf("release %d woke a second waiter (%v, %v)", k, a.l, a.err)
		case <-time.After(herdQuiet):
		}
	}
	t.Logf("%d releases delivered %d watch notifications (%d to waiters, %d to the releasing holders' own-node watches); each woke one waiter",
		waiters+1, delivered, want, delivered-want)
}

// herdQuiet is how long each release waits for a second wake-up: many
// round trips on loopback (a waiter's wake-up and re-list take about 1 ms).
const herdQuiet = 150 * time.Millisecond

type herdCounts struct {
	watches int // watches currently set
	deleted int // node-deleted watch notifications delivered so far
	other   int // node-created, data-changed and children-changed ones
}

// herdStats sums the watch counters of every server's mntr.
func herdStats(t *testing.T, zkc *zktest.Cluster) herdCounts {
	t.Helper()
	var c herdCounts
	for _, addr := range zkc.Addrs() {
		out, err := zktest.FourLetter(addr, "mntr")
		if err != nil {
			t.Fatalf("mntr %s: %v", addr, err)
		}
		seen := 0
		for _, line := range strings.Split(out, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "\t")
			if !ok {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				continue
			}
			switch k {
			case "zk_watch_count":
				c.watches += n
			case "zk_sum_node_deleted_watch_count":
				c.deleted += n
			case "zk_sum_node_created_watch_count", "zk_sum_node_changed_watch_count", "zk_sum_node_children_watch_count":
				c.other += n
			default:
				continue
			}
			seen++
		}
		if seen != 5 {
			t.Fatalf("mntr %s lacks the watch metrics (found %d of 5):\n%s", addr, seen, out)
		}
	}
	return c
}

// herdWatchers returns, over all servers, the sessions watching each path
// (4lw "wchp").
func herdWatchers(t *testing.T, zkc *zktest.Cluster) map[string][]int64 {
	t.Helper()
	w := make(map[string][]int64)
	for _, addr := range zkc.Addrs() {
		out, err := zktest.FourLetter(addr, "wchp")
		if err != nil {
			t.Fatalf("wchp %s: %v", addr, err)
		}
		var path string
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "/"):
				path = line
			case strings.HasPrefix(strings.TrimSpace(line), "0x") && path != "":
				id, err := strconv.ParseUint(strings.TrimSpace(line)[2:], 16, 64)
				if err != nil {
					t.Fatalf("wchp %s: bad session id in %q", addr, line)
				}
				w[path] = append(w[path], int64(id))
			}
		}
	}
	return w
}

func herdHex(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprintf("0x%x", id)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func herdWaitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still %s", what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
