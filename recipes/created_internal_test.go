package recipes

import (
	"fmt"
	"testing"
)

// The log of create replies keeps the newest entries, at most
// createdLogMax, and gives each out once.
func TestCreatedLogBounded(t *testing.T) {
	var l createdLog
	const n = 3 * createdLogMax
	for i := range n {
		l.add(fmt.Sprint(i), int64(i), 7)
	}
	if kept := len(l.cur) + len(l.old); kept > createdLogMax {
		t.Fatalf("%d entries kept, want at most %d", kept, createdLogMax)
	}
	if _, ok := l.take("0"); ok {
		t.Fatal("the oldest entry was kept")
	}
	for _, i := range []int{n - 1, n - createdLogMax/2} {
		got, ok := l.take(fmt.Sprint(i))
		if !ok || got.Czxid != int64(i) || got.Session != 7 {
			t.Fatalf("take(%d) = %+v, %v", i, got, ok)
		}
		if _, ok := l.take(fmt.Sprint(i)); ok {
			t.Fatalf("entry %d given out twice", i)
		}
	}
}
