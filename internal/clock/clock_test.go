package clock

import (
	"testing"
	"time"
)

func TestNowAdvancesWithRealTime(t *testing.T) {
	a, wall := Now(), time.Now()
	time.Sleep(20 * time.Millisecond) // the duration under test, not ordering
	got, want := Since(a), time.Since(wall)
	if d := got - want; d < -5*time.Millisecond || d > 5*time.Millisecond {
		t.Fatalf("clock advanced %v while the wall clock advanced %v", got, want)
	}
	if a.Add(got) > Now() {
		t.Fatal("Add/Now disagree")
	}
}

func TestTimeConvertsToWallClock(t *testing.T) {
	if d := time.Until(Now().Add(time.Second).Time()); d < 900*time.Millisecond || d > time.Second {
		t.Fatalf("an instant 1s ahead converts to %v from now", d)
	}
}
