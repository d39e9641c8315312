package recipes

import (
	"errors"
	"fmt"
	"strconv"
)

// Token is a fencing token: the czxid (creation zxid) of a contender node.
// A zxid is epoch<<32 | counter, so tokens only grow, across leader changes
// and server restarts: a lock granted later carries a larger token. A
// resource that remembers the largest token it has accepted, and rejects
// smaller ones, rejects the writes of a holder that lost its lock.
//
// Its text form (String, ParseToken) is the decimal number, for logs,
// headers and SQL parameters.
type Token int64

// String returns the decimal form, for example "4294967300".
func (t Token) String() string { return strconv.FormatInt(int64(t), 10) }

// Epoch returns the ZooKeeper leader epoch the token was issued in.
func (t Token) Epoch() uint32 { return uint32(uint64(t) >> 32) }

// Counter returns the zxid counter within the epoch.
func (t Token) Counter() uint32 { return uint32(uint64(t)) }

// GoString shows the epoch and counter, for debugging.
func (t Token) GoString() string {
	return fmt.Sprintf("Token(epoch=%d, counter=%d)", t.Epoch(), t.Counter())
}

// ParseToken parses the text form of a Token.
// The error names the rule that s breaks: empty, not a decimal number,
// not positive, or larger than the largest token (2^63−1).
func ParseToken(s string) (Token, error) {
	bad := func(why string) error { return fmt.Errorf("recipes: invalid fencing token %q: %s", s, why) }
	if s == "" {
		return 0, bad("empty")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && s[0] == '-':
		return 0, bad("negative")
	case errors.Is(err, strconv.ErrRange):
		return 0, bad("too large (the largest token is 9223372036854775807)")
	case err != nil:
		return 0, bad("not a decimal number")
	case n < 0:
		return 0, bad("negative")
	case n == 0:
		return 0, bad("zero is not a token (tokens start at 1)")
	}
	return Token(n), nil
}
