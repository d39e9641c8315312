package zktest

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
)

// RootPrefix is the parent of every path returned by Root.
const RootPrefix = "/zktest"

// Root returns a znode path unique to this call, for the test to put its
// nodes under: "/zktest/<sanitized test name>-<8 random hex digits>". The
// node itself is not created.
func Root(t testing.TB) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("zktest: %v", err)
	}
	return RootPrefix + "/" + sanitizeName(t.Name()) + "-" + hex.EncodeToString(b[:])
}

// sanitizeName maps a test name to one znode name component.
func sanitizeName(name string) string {
	var sb strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			sb.WriteRune(r)
		default:
			sb.WriteByte('_')
		}
	}
	s := sb.String()
	if len(s) > 120 {
		s = s[:120]
	}
	if s == "" {
		s = "test"
	}
	return s
}
