package contend

import (
	"path"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/zkrecipes/zkrecipes/zktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(zktest.Wrap(m)) }

// A create of ours that landed twice leaves a second node with our name
// but another sequence number: Join keeps its own node, deletes the other
// and leaves it out of the list; nobody else's node is touched.
func TestDuplicateOfOurNodeIsDropped(t *testing.T) {
	zkc := zktest.Shared(t, zktest.Config{})
	root := zktest.Root(t)
	sess := zkc.Session(t)
	obs := zkc.Conn(t)
	q, err := NewQueue("test", sess, root, []string{"lock-"}, nil)
	require.NoError(t, err)
	require.NoError(t, q.EnsurePath(t.Context(), q.Dir, nil))

	guid, other := NewGUID(), NewGUID()
	mk := func(guid string) string {
		t.Helper()
		p, err := obs.Create(q.Dir+"/"+ProtectedPrefix+guid+"-lock-", nil, zk.FlagSequence, zk.WorldACL(zk.PermAll))
		require.NoError(t, err)
		return path.Base(p)
	}
	before, ours, dup, after := mk(other), mk(guid), mk(guid), mk(NewGUID())
	me, ok := Parse(ours, q.Kinds)
	require.True(t, ok)

	kept := q.dropDuplicates([]string{after, dup, ours, before}, me)
	require.Equal(t, []string{after, ours, before}, kept)
	zktest.WaitUntil(t, 10*time.Second, "the duplicate is deleted", func() bool {
		ok, _, err := obs.Exists(q.Dir + "/" + dup)
		return err == nil && !ok
	})
	got, _, err := obs.Children(q.Dir)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{before, ours, after}, got)

	// No duplicate: the same slice comes back.
	list := []string{after, ours, before}
	require.Equal(t, list, q.dropDuplicates(list, me))
}
