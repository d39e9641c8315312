// Package contend is the contender queue shared by the lock-like recipes:
// protected ephemeral-sequential nodes under a container parent, ordered by
// their sequence suffix, each waiter watching only the contender that
// blocks it. Recipes differ only in which lower contender blocks them.
package contend

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/zkrecipes/zkrecipes/internal/core"
)

// ProtectedPrefix starts every protected node name (as in Curator and
// go-zookeeper): "_c_<guid>-<kind><10-digit sequence>". Nodes of kazoo's
// kinds are "<guid><kind><10-digit sequence>" (core.NamePrefix).
const ProtectedPrefix = core.ProtectedPrefix

const seqDigits = 10

// Node is a contender parsed from a child name.
type Node struct {
	Name string // the child name
	Kind string // which of the recognised kinds it is, e.g. "lock-"
	GUID string // protection guid; "" for unprotected names
	Seq  int64  // sequence suffix
}

// Parse recognises name as a contender of one of kinds: a name that ends
// in kind followed by a 10-digit sequence number. Anything else (foreign
// nodes, other recipes' names) is not a contender.
func Parse(name string, kinds []string) (Node, bool) {
	if len(name) <= seqDigits {
		return Node{}, false
	}
	cut := len(name) - seqDigits
	seq, err := strconv.ParseInt(name[cut:], 10, 64)
	if err != nil || seq < 0 || name[cut] == '+' || name[cut] == '-' {
		return Node{}, false
	}
	head := name[:cut]
	for _, k := range kinds {
		if !strings.HasSuffix(head, k) {
			continue
		}
		n := Node{Name: name, Kind: k, Seq: seq}
		rest := head[:len(head)-len(k)]
		switch {
		case strings.HasPrefix(rest, ProtectedPrefix) && strings.HasSuffix(rest, "-"):
			n.GUID = rest[len(ProtectedPrefix) : len(rest)-1]
		case core.IsKazooKind(k) && isGUID(rest):
			n.GUID = rest
		}
		return n, true
	}
	return Node{}, false
}

// Sorted parses children and returns the contenders of kinds in queue order.
func Sorted(children []string, kinds []string) []Node {
	out := make([]Node, 0, len(children))
	for _, c := range children {
		if n, ok := Parse(c, kinds); ok {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b Node) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// Ahead returns, in queue order, all that decides whether the contender
// with sequence number seq is blocked: its own node, when it is among
// children, and the two contenders nearest ahead of it that block it. Wait
// needs no more: the nearest is the one it watches, and whether there is a
// second tells whether the nearest's deletion alone frees it. It parses
// only the names that may be among those three and sorts nothing: joining
// the back of a queue of n costs a scan of n names, not a sort.
func Ahead(children []string, kinds []string, seq int64, blocks Blocker) []Node {
	// A contender's suffix is exactly seqDigits digits, so comparing
	// suffixes as text orders them as numbers: a name whose suffix sorts
	// after ours is behind us or no contender, and one whose suffix sorts
	// before the second blocker's found so far cannot be among the two
	// nearest; neither needs a parse.
	last := seqText(seq)
	var (
		me, near, second Node
		hasMe, hasNear   bool
		hasSecond        bool
	)
	for _, c := range children {
		if last != "" && len(c) > seqDigits {
			suffix := c[len(c)-seqDigits:]
			if suffix > last || (hasSecond && suffix < second.Name[len(second.Name)-seqDigits:]) {
				continue
			}
		}
		n, ok := Parse(c, kinds)
		switch {
		case !ok || n.Seq > seq:
		case n.Seq == seq:
			me, hasMe = n, true
		case !blocks(n):
		case !hasNear || n.Seq > near.Seq:
			second, hasSecond = near, hasNear
			near, hasNear = n, true
		case !hasSecond || n.Seq > second.Seq:
			second, hasSecond = n, true
		}
	}
	var kept [3]Node
	k := 0
	if hasSecond {
		kept[k], k = second, k+1
	}
	if hasNear {
		kept[k], k = near, k+1
	}
	if hasMe {
		kept[k], k = me, k+1
	}
	return slices.Clone(kept[:k]) // sized to what is kept: one node when uncontended
}

// seqText is seq as a sequence suffix (seqDigits digits, zero-padded), or
// "" when it has no such form.
func seqText(seq int64) string {
	if seq < 0 || seq >= 1e10 {
		return ""
	}
	var b [seqDigits]byte
	for i := seqDigits - 1; i >= 0; i-- {
		b[i] = byte('0' + seq%10)
		seq /= 10
	}
	return string(b[:])
}

// Index returns the position of the node named name in list, or -1.
func Index(list []Node, name string) int {
	for i, n := range list {
		if n.Name == name {
			return i
		}
	}
	return -1
}

// NewGUID returns 32 random hex digits, from crypto/rand: a guid names a
// contender's node before the server names it, and must be unique among
// every client's. crypto/rand is read for 256 guids at a time (one call
// into the kernel's random source instead of one per Join).
func NewGUID() string {
	var h [2 * guidBytes]byte
	guids.mu.Lock()
	if guids.next == 0 {
		if _, err := rand.Read(guids.buf[:]); err != nil {
			guids.mu.Unlock()
			panic("contend: crypto/rand failed: " + err.Error())
		}
	}
	hex.Encode(h[:], guids.buf[guids.next:guids.next+guidBytes])
	guids.next = (guids.next + guidBytes) % len(guids.buf)
	guids.mu.Unlock()
	return string(h[:])
}

// guidBytes is the random bytes in a guid.
const guidBytes = 16

// guids is NewGUID's supply of random bytes: buf[next:] is unused.
var guids struct {
	mu   sync.Mutex
	buf  [256 * guidBytes]byte
	next int
}

// hasGUID reports whether child is a contender node carrying guid, in
// either naming convention.
func hasGUID(child, guid string) bool {
	return strings.HasPrefix(child, ProtectedPrefix+guid+"-") ||
		strings.HasPrefix(child, guid+core.KazooLock) || strings.HasPrefix(child, guid+core.KazooReadLock)
}

// isGUID reports whether s is 32 lower-case hex digits (ours, and kazoo's
// uuid4().hex).
func isGUID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
