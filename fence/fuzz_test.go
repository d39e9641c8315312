package fence

import (
	"net/http"
	"testing"
)

// FromHeader never panics; a token it accepts is positive and round-trips
// through SetHeader.
func FuzzFromHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, v string, twice bool) {
		h := http.Header{}
		h.Add(Header, v)
		if twice {
			h.Add(Header, v)
		}
		tok, ok, err := FromHeader(h)
		if !ok {
			t.Fatalf("FromHeader(%q) did not see the header", v)
		}
		if err != nil {
			return
		}
		if twice || tok <= 0 {
			t.Fatalf("FromHeader(%q, twice=%v) = %d", v, twice, tok)
		}
		h2 := http.Header{}
		SetHeader(h2, tok)
		if back, _, err := FromHeader(h2); err != nil || back != tok {
			t.Fatalf("round trip of %d: %d %v", tok, back, err)
		}
	})
}
