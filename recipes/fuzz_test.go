package recipes

import (
	"strings"
	"testing"
)

// Seed corpora live in testdata/fuzz/<target>; make fuzz runs each target.

// A token parses only as a positive decimal int64, and prints back as the
// same number.
func FuzzParseToken(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		if tok <= 0 {
			t.Fatalf("ParseToken(%q) = %d: not positive", s, tok)
		}
		back, err := ParseToken(tok.String())
		if err != nil || back != tok {
			t.Fatalf("round trip of %q: %v %v", s, back, err)
		}
	})
}

// A path that passes ValidatePath is absolute, clean and outside
// /zookeeper.
func FuzzValidatePath(f *testing.F) {
	f.Fuzz(func(t *testing.T, p string) {
		if ValidatePath(p) != nil {
			return
		}
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.HasSuffix(p, "/") ||
			p == "/zookeeper" || strings.HasPrefix(p, "/zookeeper/") {
			t.Fatalf("ValidatePath accepted %q", p)
		}
		for _, seg := range strings.Split(p[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("ValidatePath accepted %q", p)
			}
		}
	})
}

// A server address that passes validateServer is host:port with a port in
// 1..65535.
func FuzzServerAddress(f *testing.F) {
	f.Fuzz(func(t *testing.T, addr string) {
		if validateServer(addr) != nil {
			return
		}
		i := strings.LastIndex(addr, ":")
		if i <= 0 || i == len(addr)-1 {
			t.Fatalf("validateServer accepted %q", addr)
		}
	})
}
