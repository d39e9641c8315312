package contend

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/internal/core"
)

func TestParse(t *testing.T) {
	kinds := []string{"lock-", "__READ__", "__WRIT__"}
	for _, tc := range []struct {
		name       string
		ok         bool
		kind, guid string
		seq        int64
	}{
		{"_c_0123456789abcdef0123456789abcdef-lock-0000000042", true, "lock-", "0123456789abcdef0123456789abcdef", 42},
		{"lock-0000000007", true, "lock-", "", 7}, // unprotected (kazoo-style prefix-less)
		{"_c_5e2f9c1a-7d44-4b0b-8f1e-2a6c3b9d8e71-__WRIT__0000000003", true, "__WRIT__", "5e2f9c1a-7d44-4b0b-8f1e-2a6c3b9d8e71", 3}, // Curator
		{"_c_x-__READ__0000000011", true, "__READ__", "x", 11},
		{"foo", false, "", "", 0},
		{"lock-abc", false, "", "", 0},
		{"lock-+000000001", false, "", "", 0},
		{"lock--000000001", false, "", "", 0},
		{"_c_x-latch-0000000001", false, "", "", 0}, // another recipe's kind
		{"0000000001", false, "", "", 0},
	} {
		n, ok := Parse(tc.name, kinds)
		require.Equal(t, tc.ok, ok, tc.name)
		if ok {
			require.Equal(t, tc.kind, n.Kind, tc.name)
			require.Equal(t, tc.guid, n.GUID, tc.name)
			require.Equal(t, tc.seq, n.Seq, tc.name)
		}
	}
}

func TestSortedIgnoresForeignAndOrdersBySeq(t *testing.T) {
	got := Sorted([]string{
		"_c_b-lock-0000000010", "ready", "_c_a-lock-0000000002", "lock-0000000005", "other-0000000001",
	}, []string{"lock-"})
	var names []string
	for _, n := range got {
		names = append(names, n.Name)
	}
	require.Equal(t, []string{"_c_a-lock-0000000002", "lock-0000000005", "_c_b-lock-0000000010"}, names)
}

// Ahead keeps our node and the two nearest contenders ahead of it that
// block it, in queue order; it drops those behind us and foreign names.
func TestAheadKeepsUsAndTheTwoNearestBlockers(t *testing.T) {
	children := []string{
		"_c_b-lock-0000000010", "ready", "_c_a-lock-0000000002", "lock-0000000005",
		"_c_c-lock-0000000007", "lock-0000000001", "other-0000000006",
	}
	kinds := []string{"lock-"}
	require.Equal(t, []string{"_c_a-lock-0000000002", "lock-0000000005", "_c_c-lock-0000000007"}, seqNames(Ahead(children, kinds, 7, Predecessor)))
	require.Equal(t, []string{"lock-0000000001"}, seqNames(Ahead(children, kinds, 1, Predecessor)))
	require.Equal(t, []string{"lock-0000000001", "_c_a-lock-0000000002"}, seqNames(Ahead(children, kinds, 3, Predecessor)), "our node gone")
	require.Equal(t, []string{"_c_c-lock-0000000007"}, seqNames(Ahead(children, kinds, 7, Unblocked)))

	// A reader is blocked by writers only.
	rw := []string{"read-0000000001", "write-0000000002", "read-0000000003", "write-0000000004", "read-0000000005", "read-0000000006"}
	writer := func(n Node) bool { return n.Kind == "write-" }
	require.Equal(t, []string{"write-0000000002", "write-0000000004", "read-0000000006"},
		seqNames(Ahead(rw, []string{"read-", "write-"}, 6, writer)))
	require.Equal(t, []string{"write-0000000002", "read-0000000003"}, seqNames(Ahead(rw, []string{"read-", "write-"}, 3, writer)))
}

// In a long queue, listed in any order, Ahead keeps what a sort says.
func TestAheadInALongShuffledQueue(t *testing.T) {
	kinds := []string{"read-", "write-"}
	var children []string
	for i := range 300 {
		kind := "read-"
		if i%7 == 0 {
			kind = "write-"
		}
		children = append(children, fmt.Sprintf("_c_%s-%s%010d", NewGUID(), kind, i*3))
	}
	children = append(children, "ready", "lock-x")
	writer := func(n Node) bool { return n.Kind == "write-" }
	for _, seed := range []uint64{1, 2, 3} {
		r := rand.New(rand.NewPCG(seed, seed))
		r.Shuffle(len(children), func(i, j int) { children[i], children[j] = children[j], children[i] })
		sorted := Sorted(children, kinds)
		for _, me := range []int{0, 1, 5, 150, 299} {
			for _, blocks := range []Blocker{Predecessor, writer} {
				var want []Node
				for _, n := range sorted[:me] {
					if blocks(n) {
						want = append(want, n)
					}
				}
				want = append(want[max(0, len(want)-2):], sorted[me])
				require.Equal(t, want, Ahead(children, kinds, sorted[me].Seq, blocks), "seed %d, me %d", seed, me)
			}
		}
	}
}

func seqNames(list []Node) []string {
	var names []string
	for _, n := range list {
		names = append(names, n.Name)
	}
	return names
}

// Ahead skips names by comparing suffixes as text and keeps no list: it
// must keep exactly what a sort of all contenders says, whatever the names.
func FuzzAhead(f *testing.F) {
	f.Add("_c_a-lock-0000000005", "lock-0000000012", "lock-+000000001", "__lock__0000000003", int64(7), false)
	f.Add("lock-99999999999", "lock-000000000a", "__lock__0000000003", "lock-0000000001", int64(3), true)
	f.Add("lock-0000000007", "lock-9999999999", "x", "lock-0000000006", int64(9999999999), false)
	f.Add("lock-0000000001", "lock-0000000002", "lock-0000000003", "lock-0000000004", int64(4), false)
	f.Fuzz(func(t *testing.T, a, b, c, d string, seq int64, kazooOnly bool) {
		kinds := []string{"lock-", core.KazooLock}
		blocks := Predecessor
		if kazooOnly {
			blocks = func(n Node) bool { return n.Kind == core.KazooLock }
		}
		children := []string{a, b, c, d}
		var ahead, me []Node
		sorted := Sorted(children, kinds)
		for i, n := range sorted {
			if i > 0 && sorted[i-1].Seq == n.Seq {
				t.Skip("two names with one sequence number: not a queue ZooKeeper makes")
			}
			switch {
			case n.Seq == seq:
				me = append(me, n)
			case n.Seq < seq && blocks(n):
				ahead = append(ahead, n)
			}
		}
		want := append(ahead[max(0, len(ahead)-2):], me...)
		got := Ahead(children, kinds, seq, blocks)
		if len(want) == 0 {
			require.Empty(t, got)
			return
		}
		require.Equal(t, want, got)
	})
}

func FuzzParse(f *testing.F) {
	f.Add("_c_0123-lock-0000000042")
	f.Add("lock-99999999999")
	f.Fuzz(func(t *testing.T, name string) {
		n, ok := Parse(name, []string{"lock-", "__READ__"})
		if ok && (n.Seq < 0 || n.Name != name) {
			t.Fatalf("bad parse of %q: %+v", name, n)
		}
	})
}

// kazoo's names ("<uuid>__lock__N", "<uuid>__rlock__N") are contenders of
// kazoo's kinds, carry kazoo's uuid as their guid, and sort with ours by
// their sequence; ours made WithKazooNames are found again by their guid.
func TestKazooNames(t *testing.T) {
	kinds := []string{"lock-", core.KazooLock, core.KazooReadLock}
	guid := "0123456789abcdef0123456789abcdef"
	n, ok := Parse(guid+"__lock__0000000007", kinds)
	require.True(t, ok)
	require.Equal(t, core.KazooLock, n.Kind)
	require.Equal(t, guid, n.GUID)
	n, ok = Parse(guid+"__rlock__0000000008", kinds)
	require.True(t, ok)
	require.Equal(t, core.KazooReadLock, n.Kind)
	n, ok = Parse("not-a-guid__lock__0000000009", kinds)
	require.True(t, ok, "a kazoo-kind node whatever its prefix")
	require.Empty(t, n.GUID)

	require.Equal(t, guid+"__lock__", core.NamePrefix(guid, core.KazooLock))
	require.Equal(t, "_c_"+guid+"-lock-", core.NamePrefix(guid, "lock-"))
	require.True(t, hasGUID(guid+"__rlock__0000000001", guid))
	require.True(t, hasGUID("_c_"+guid+"-lock-0000000001", guid))
	require.False(t, hasGUID("ffff"+guid[4:]+"__lock__0000000001", guid))
	require.True(t, core.Tracked("/a/"+guid+"__lock__"))
	require.True(t, core.Tracked("/a/"+guid+"__lock__0000000012"), "the path of a create reply")
	require.True(t, core.Tracked("/a/"+guid+"__rlock__0000000012"))
	require.False(t, core.Tracked("/a/plain0000000012"))
	require.True(t, core.Tracked("/a/_c_"+guid+"-latch-"))
	require.False(t, core.Tracked("/a/plain"))

	got := Sorted([]string{"_c_x-lock-0000000004", guid + "__lock__0000000002", "b__rlock__0000000003"}, kinds)
	require.Equal(t, []int64{2, 3, 4}, []int64{got[0].Seq, got[1].Seq, got[2].Seq})
}

// NewGUID's guids are 32 lower-case hex digits and never repeat, across
// refills of its supply of random bytes (256 guids each).
func TestNewGUIDIsUnique(t *testing.T) {
	seen := make(map[string]bool)
	for range 4*256 + 7 {
		g := NewGUID()
		require.True(t, isGUID(g), g)
		require.False(t, seen[g], "guid %s repeated", g)
		seen[g] = true
	}
}
