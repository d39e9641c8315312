package recipes

import (
	"fmt"
	"testing"
)

// The log of create replies keeps the newest entries, at most
// createdLogMax (each shard its newest share), and gives each out once.
func TestCreatedLogBounded(t *testing.T) {
	var l createdLog
	const n = 3 * createdLogMax
	for i := range n {
		l.add(fmt.Sprint(i), int64(i), 7)
	}
	if n := kept(&l); n > createdLogMax || n < createdLogMax/2 {
		t.Fatalf("%d entries kept, want %d to %d", n, createdLogMax/2, createdLogMax)
	}
	if _, ok := l.take("0"); ok {
		t.Fatal("the oldest entry was kept")
	}
	// Each shard keeps at least its newest createdLogMax/createdShards/2
	// (128): the newest createdLogMax/8 (512) are kept unless a shard got
	// four times its share of them.
	for _, i := range []int{n - 1, n - createdLogMax/8} {
		got, ok := l.take(fmt.Sprint(i))
		if !ok || got.Czxid != int64(i) || got.Session != 7 {
			t.Fatalf("take(%d) = %+v, %v", i, got, ok)
		}
		if _, ok := l.take(fmt.Sprint(i)); ok {
			t.Fatalf("entry %d given out twice", i)
		}
	}
}

// kept returns the number of entries l keeps.
func kept(l *createdLog) int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.cur) + len(s.old)
		s.mu.Unlock()
	}
	return n
}
