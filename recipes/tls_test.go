package recipes_test

import (
	"crypto/tls"
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

func tlsEnsemble(t *testing.T) *zktest.Cluster {
	return zktest.Shared(t, zktest.Config{Servers: 3, TLS: true})
}

// The whole Mutex and election path over TLS on an ensemble: tokens come
// from the create replies the connection observer reads inside TLS.
func TestTLSMutexAndElection(t *testing.T) {
	zkc := tlsEnsemble(t)
	root := zktest.Root(t)
	ctx := ctxT(t, time.Minute)
	s1, s2 := zkc.Session(t), zkc.Session(t)

	l1, err := lock.NewMutex(s1, root+"/lock").Acquire(ctx)
	require.NoError(t, err)
	_, err = lock.NewMutex(s2, root+"/lock").TryAcquire(ctx)
	require.ErrorIs(t, err, lock.ErrLocked)
	_, st, err := zkc.Conn(t).Get(l1.Path())
	require.NoError(t, err)
	require.Equal(t, st.Czxid, int64(l1.Token()), "the token is the node's czxid")
	require.NoError(t, l1.Release(ctx))
	l2, err := lock.NewMutex(s2, root+"/lock").Acquire(ctx)
	require.NoError(t, err)
	require.Greater(t, l2.Token(), l1.Token())
	require.NoError(t, l2.Release(ctx))

	term, err := election.NewElection(s1, root+"/leader", election.WithValue([]byte("a"))).Acquire(ctx)
	require.NoError(t, err)
	leader, err := election.NewElection(s2, root+"/leader").Leader(ctx)
	require.NoError(t, err)
	require.Equal(t, "a", string(leader.Value))
	require.NoError(t, term.Release(ctx))
}

// Each misconfiguration fails fast (WithFailFast) with an error naming the
// cause, in every server's line of Connect's error.
func TestTLSFailuresNameTheCause(t *testing.T) {
	zkc := tlsEnsemble(t)
	other, err := zktest.NewCA("someone-else")
	require.NoError(t, err)
	expired := zkc.TLS().ClientCert(t, "expired-client", time.Now().Add(-time.Hour))
	// zktest's servers speak TLS 1.3 and 1.2. In 1.2 the server refuses our
	// certificate inside the handshake; in 1.3 after the client's side of
	// it is done, with an alert on the first read.
	tls12 := func(c *tls.Config) *tls.Config { c.MaxVersion = tls.VersionTLS12; return c }
	tls13 := func(c *tls.Config) *tls.Config { c.MinVersion = tls.VersionTLS13; return c }
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		want string
	}{
		{"wrong CA", &tls.Config{RootCAs: other.Pool()}, "certificate signed by unknown authority"},
		{"expired client certificate, TLS 1.2", tls12(&tls.Config{RootCAs: zkc.TLS().Pool(), Certificates: []tls.Certificate{expired}}), `our client certificate "expired-client" expired`},
		{"expired client certificate, TLS 1.3", tls13(&tls.Config{RootCAs: zkc.TLS().Pool(), Certificates: []tls.Certificate{expired}}), `our client certificate "expired-client" expired`},
		{"TLS client on a plain port", zkc.TLSConfig(), "not a TLS port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addrs := zkc.Addrs()
			if tc.name == "TLS client on a plain port" {
				addrs = plainAddrs(t, zkc)
			}
			ctx := ctxT(t, 30*time.Second)
			start := time.Now()
			s, err := recipes.Connect(ctx, addrs, recipes.WithTLS(tc.cfg), recipes.WithFailFast())
			took := time.Since(start)
			require.Nil(t, s)
			require.ErrorIs(t, err, recipes.ErrUnreachable, "%v", err)
			require.ErrorContains(t, err, tc.want)
			require.Less(t, took, 10*time.Second, "not fast")
			t.Logf("%s: failed after %v: %v", tc.name, took.Round(time.Millisecond), err)
		})
	}

	t.Run("plain client on the TLS port", func(t *testing.T) {
		ctx := ctxT(t, 3*time.Second)
		s, err := recipes.Connect(ctx, zkc.Addrs()[:1])
		require.Nil(t, s)
		require.ErrorContains(t, err, "TLS-only port")
	})
}

// plainAddrs returns the cluster's plain client ports: what Conn dials.
func plainAddrs(t *testing.T, zkc *zktest.Cluster) []string {
	t.Helper()
	c := zkc.ServerConn(t, 0)
	require.Eventually(t, func() bool { return c.State() == zk.StateHasSession }, 30*time.Second, 10*time.Millisecond)
	return []string{c.Server()}
}

// The local deadline fires under a partition of a TLS connection, before
// the server expires the session.
func TestTLSDeadlineUnderPartition(t *testing.T) {
	zkc := tlsEnsemble(t)
	root := zktest.Root(t)
	obs := zkc.Conn(t)
	for _, dir := range []string{path.Dir(root), root} {
		if _, err := obs.Create(dir, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatal(err)
		}
	}
	p := zkc.Proxy(t)
	s := p.Session(t, recipes.WithSessionTimeout(2*time.Second))
	l, err := lock.NewMutex(s, root+"/lock").Acquire(ctxT(t, 30*time.Second))
	require.NoError(t, err)
	events := s.Subscribe(ctxT(t, 30*time.Second))
	start := time.Now()
	p.Set(zktest.Blackhole)
	ev := waitState(t, events, recipes.StateLost, 5*time.Second)
	require.ErrorIs(t, ev.Err, recipes.ErrDeadline)
	require.ErrorIs(t, l.Err(), lock.ErrLost)
	held, _, err := obs.Exists(l.Path())
	require.NoError(t, err)
	require.True(t, held, "the server had expired the session already (%v after the partition)", time.Since(start))
}

// Client certificates authenticate as x509:<subject>: a lock whose nodes
// only CN=alice may touch keeps out a TLS client without her certificate.
func TestTLSClientCertificateACL(t *testing.T) {
	zkc := tlsEnsemble(t)
	root := zktest.Root(t)
	ctx := ctxT(t, time.Minute)
	alice := zkc.TLS().ClientCert(t, "alice", time.Now().Add(time.Hour))
	aliceTLS := zkc.TLSConfig()
	aliceTLS.Certificates = []tls.Certificate{alice}
	onlyAlice := []zk.ACL{{Perms: zk.PermAll, Scheme: "x509", ID: "CN=alice"}, {Perms: zk.PermRead, Scheme: "world", ID: "anyone"}}
	obs := zkc.Conn(t)
	for _, dir := range []string{path.Dir(root), root} { // open parents: the server is shared
		if _, err := obs.Create(dir, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			t.Fatal(err)
		}
	}
	s := zkc.Session(t, recipes.WithTLS(aliceTLS), recipes.WithACL(onlyAlice))
	mallory := zkc.Session(t) // TLS, no client certificate

	l, err := lock.NewMutex(s, root+"/lock").Acquire(ctx)
	require.NoError(t, err)
	err = mallory.Conn().Delete(l.Path(), -1)
	require.ErrorIs(t, err, zk.ErrNoAuth, "deleting the holder's node")
	_, err = lock.NewMutex(mallory, root+"/lock").TryAcquire(ctx)
	require.ErrorIs(t, err, zk.ErrNoAuth, "joining the queue")
	require.NoError(t, l.Err())
	require.NoError(t, l.Release(ctx))
}
