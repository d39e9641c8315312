package lock_test

import (
	"context"
	"errors"
	"path"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/require"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

// A locked-down lock path (docs/SECURITY.md): its nodes admit only the
// service's digest identity. A client without the credentials cannot
// delete the holder's node, join the queue, ask for a revocation or touch
// the lock-delay marker: it gets NoAuth, at once, never retried.
func TestLockedDownPathKeepsOthersOut(t *testing.T) {
	zkc := shared(t)
	root := zktest.Root(t)
	ctx := testCtx(t)
	acl := append(zk.DigestACL(zk.PermAll, "svc", "secret"), zk.WorldACL(zk.PermRead)...)
	member := func() *recipes.Session {
		return zkc.Session(t, recipes.WithDigestAuth("svc", "secret"), recipes.WithACL(acl))
	}
	// The test's parents are created open (as a shared server's must stay);
	// the lock path below them is the service's.
	obs := zkc.Conn(t)
	for _, dir := range []string{path.Dir(root), root} {
		if _, err := obs.Create(dir, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatal(err)
		}
	}
	lockPath := root + "/locks/job"
	holder, err := lock.NewMutex(member(), lockPath, lock.WithRevocable(), lock.WithLockDelay(time.Second)).Acquire(ctx)
	require.NoError(t, err)

	outsider := zkc.Session(t)
	require.ErrorIs(t, outsider.Conn().Delete(holder.Path(), -1), zk.ErrNoAuth, "deleting the holder's node")
	_, err = outsider.Conn().Set(holder.Path(), []byte(lock.RevokeMessage), -1)
	require.ErrorIs(t, err, zk.ErrNoAuth, "writing a revocation request")
	_, err = outsider.Conn().Set(lockPath+"/"+lock.DelayNode, []byte("x"), -1)
	require.ErrorIs(t, err, zk.ErrNoAuth, "writing the lock-delay marker")
	_, _, err = lock.Revoke(ctx, outsider, lockPath, 0)
	require.ErrorIs(t, err, zk.ErrNoAuth, "lock.Revoke")

	// The recipes report NoAuth at once, blocking calls included.
	start := time.Now()
	_, err = lock.NewMutex(outsider, lockPath).TryAcquire(ctx)
	require.ErrorIs(t, err, zk.ErrNoAuth, "TryAcquire")
	bounded, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = lock.NewMutex(outsider, lockPath).Acquire(bounded)
	require.ErrorIs(t, err, zk.ErrNoAuth, "Acquire")
	_, err = lock.NewRWMutex(outsider, lockPath).AcquireRead(bounded)
	require.ErrorIs(t, err, zk.ErrNoAuth, "AcquireRead")
	_, err = election.NewElection(outsider, lockPath).Acquire(bounded)
	require.ErrorIs(t, err, zk.ErrNoAuth, "election Acquire")
	require.Less(t, time.Since(start), 5*time.Second, "NoAuth was retried")

	require.NoError(t, holder.Err(), "the holder kept its lock")
	require.NoError(t, holder.Release(ctx))
	// A member still takes it.
	l, err := lock.NewMutex(member(), lockPath).Acquire(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Release(ctx))
}
