package recipes

import (
	"testing"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/clock"
	"github.com/zkrecipes/zkrecipes/internal/wire"
)

// The proof rule: pings (which a follower answers alone) never advance the
// proven instant; a sync sent at least D after a request was answered
// proves that request's send time; a handshake proves its own.
func TestProofRule(t *testing.T) {
	const D = 200 * time.Millisecond
	ms := func(n int) clock.Instant { return clock.Instant(time.Duration(n) * time.Millisecond) }
	var p proof
	p.handshake(ms(100))
	if got := p.proven; got != ms(100) {
		t.Fatalf("after the handshake proven = %v", got)
	}
	ping := func(sent, recv int) clock.Instant {
		return p.answer(wire.Answer{Sent: ms(sent), Received: ms(recv), Op: wire.OpPing}, D, time.Millisecond)
	}
	sync := func(sent, recv int, code int32) clock.Instant {
		return p.answer(wire.Answer{Sent: ms(sent), Received: ms(recv), Op: wire.OpSync, Err: code}, D, time.Millisecond)
	}
	for i := 1; i <= 10; i++ {
		if got := ping(100+100*i, 101+100*i); got != ms(100) {
			t.Fatalf("a ping advanced proven to %v", got)
		}
	}
	// Sent at 1150: requests answered by 950 are proven (the ping sent at 900).
	if got := sync(1150, 1152, 0); got != ms(900) {
		t.Fatalf("sync at 1150: proven = %v, want 900ms", got)
	}
	// A failed sync proves nothing new.
	if got := sync(1500, 1502, -112); got != ms(900) {
		t.Fatalf("a failed sync advanced proven to %v", got)
	}
	// Sent at 1400: the requests answered by 1200 are proven, the newest
	// being the sync sent at 1150.
	if got := sync(1400, 1401, 0); got != ms(1150) {
		t.Fatalf("sync at 1400: proven = %v, want 1150ms", got)
	}
	// A later handshake proves itself and forgets what came before it.
	p.handshake(ms(5000))
	if got := sync(5100, 5101, 0); got != ms(5000) {
		t.Fatalf("right after a handshake proven = %v, want 5000ms", got)
	}
}
