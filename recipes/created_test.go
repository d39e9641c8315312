package recipes_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// TestCreateReplyCarriesCzxid checks, against a 3-node ensemble under
// concurrent writes from many sessions, that the zxid of a create's reply
// header is the created node's czxid and that the reply's session owns it:
// recipes take fencing tokens from it.
func TestCreateReplyCarriesCzxid(t *testing.T) {
	zkc := zktest.StartCluster(t, zktest.Config{Servers: 3})
	root := zktest.Root(t)
	obs := zkc.Conn(t)
	_, err := obs.Create("/zktest", nil, 0, zk.WorldACL(zk.PermAll))
	if err != nil && err != zk.ErrNodeExists {
		t.Fatal(err)
	}
	_, err = obs.Create(root, nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)

	const sessions, perSession = 6, 40
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := 0; i < sessions; i++ {
		s := zkc.Session(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perSession; j++ {
				p, err := s.Conn().Create(fmt.Sprintf("%s/_c_%02d%02d-lock-", root, i, j), nil,
					zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
				if err != nil {
					errs <- err
					return
				}
				got, ok := core.Of(s).TakeCreated(p)
				_, st, err := s.Conn().Exists(p)
				switch {
				case err != nil:
					errs <- err
				case !ok:
					errs <- fmt.Errorf("no reply seen for %s", p)
				case got.Czxid != st.Czxid:
					errs <- fmt.Errorf("%s: reply zxid 0x%x, czxid 0x%x", p, got.Czxid, st.Czxid)
				case got.Session != st.EphemeralOwner || got.Session != s.ID():
					errs <- fmt.Errorf("%s: reply session 0x%x, owner 0x%x, ours 0x%x", p, got.Session, st.EphemeralOwner, s.ID())
				default:
					continue
				}
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
