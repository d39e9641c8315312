// Package membership implements group membership on ZooKeeper: who is
// alive now. Each member is an ephemeral node <path>/<id> whose data is the
// member's; it disappears when the member's session ends. Schedulers read
// Members or follow Watch to assign work to live workers.
//
// # Sessions and Clients
//
// NewGroup takes a recipes.Source. On a *recipes.Session a Membership ends with
// that session, and Watch's channel closes when it ends. On a
// *recipes.Client, which replaces a lost session with a new one, a member
// stays in the group across sessions: when its session ends (expiry, a
// partition past the local deadline) or someone else deletes its node, it
// creates its node again, with the same id and data, on the Client's
// current session, first waiting for a node of an old session to go. The
// node is absent meanwhile (a member is only as present as its session),
// and other members see it come back with a new session id. The Membership
// ends only with Release, or when the Client is closed or the server refuses
// the node for a reason a new session would not cure (ErrGone wrapping
// that). Members and Watch read on the current session, syncing a new
// session's server with the ensemble leader first so they never go back
// to an older state; Watch's channel stays open across sessions and closes
// when its ctx is done or the Client is closed.
//
// A Membership satisfies recipes.Held: Acquire joins, Release leaves, and
// its Token is the czxid of the member node (a later incarnation of the
// same id has a larger one).
package membership

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

var (
	// ErrReleased is Membership.Err after Release.
	ErrReleased = errors.New("membership: left the group")
	// ErrGone is wrapped by Membership.Err when the membership ended
	// because the session ended or the node was deleted (on a Client: the
	// Client was closed, or the node could not be created again).
	ErrGone = errors.New("membership: no longer a member")
)

// Group is a handle on the group at a path. It is safe for concurrent use.
type Group struct {
	src     recipes.Source
	lasting bool // src outlives its sessions (a Client)
	binder  *contend.Binder[*recipes.Session, string]
	path    string
	opts    options
	err     error
}

// NewGroup returns the group at path (relative to the chroot) on src: a
// *recipes.Session, or a *recipes.Client to stay in the group and keep
// watching it across sessions (see the package doc). Bad arguments are
// reported by its methods.
func NewGroup(src recipes.Source, path string, opts ...Option) *Group {
	g := &Group{src: src, path: path}
	if g.err = core.Setup("membership", &g.opts, opts, recipes.CheckSource(src), path); g.err != nil {
		return g
	}
	g.lasting = src.Lasting()
	g.binder, g.err = contend.NewBinder(src.Live, g.lasting, g.pathOn, contend.Fixed[*recipes.Session](src))
	return g
}

// Member is one member of a group.
type Member struct {
	ID      string
	Data    []byte
	Session int64     // the member's ZooKeeper session
	Joined  time.Time // server time the node was created
}

func (g *Group) check(ctx context.Context, op string) error {
	return core.Check(ctx, g.err, "membership", op, g.path)
}

func validID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("membership: invalid member id %q (must be a non-empty znode name without '/')", id)
	}
	return nil
}

// Acquire joins the group as id with data. If a node for id already exists
// and belongs to another session (a previous incarnation whose session has
// not expired yet, or another process using the same id), Acquire waits for
// it to go, bounded by ctx.
//
// On a Client, Acquire waits for a live session, and the Membership stays
// in the group across sessions until Release (see the package doc). If
// Acquire fails, no node of ours is left behind.
func (g *Group) Acquire(ctx context.Context, id string, data []byte) (*Membership, error) {
	if err := g.check(ctx, "join"); err != nil {
		return nil, err
	}
	if err := validID(id); err != nil {
		return nil, err
	}
	if g.binder.Fixed() == nil {
		return g.joinLasting(ctx, id, data)
	}
	full := g.binder.Fixed().V + "/" + id
	if err := g.create(ctx, g.binder.Fixed().Sess, g.binder.Fixed().V, id, data, false); err != nil {
		return nil, err
	}
	return g.watchMember(ctx, id, full)
}

// create makes sure our node for id exists under dir on sess: it creates
// it, or finds that a create whose reply was lost made it, waiting for a
// node of another session to go. With wait set (a source that lasts), a
// create once sent is waited for until its reply or the session's end, so
// that no node of ours appears after create gave up.
func (g *Group) create(ctx context.Context, sess *recipes.Session, dir, id string, data []byte, wait bool) error {
	full := dir + "/" + id
	cctx := ctx
	if wait {
		cctx = sess.Context()
	}
	for {
		if wait && ctx.Err() != nil {
			return fmt.Errorf("membership: join %s as %q: %w", g.path, id, context.Cause(ctx))
		}
		_, changed := core.Of(sess).Changed()
		_, err := core.Of(sess).Create(cctx, full, data, zk.FlagEphemeral, core.ACLOr(g.opts.acl, core.Of(sess)))
		switch {
		case err == nil:
			return nil
		case errors.Is(err, zk.ErrNoNode):
			if err := core.Of(sess).CreatePath(ctx, dir, nil, zk.FlagPersistent, zk.FlagPersistent, core.ACLOr(g.opts.acl, core.Of(sess)), nil); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return fmt.Errorf("membership: join %s: %w", g.path, err)
			}
			continue
		case recipes.IsTransient(err):
			// The create may have landed: look at the node's owner.
		case !errors.Is(err, zk.ErrNodeExists):
			return fmt.Errorf("membership: join %s as %q: %w", g.path, id, err)
		}
		var gt core.Watched[[]byte]
		err = core.Of(sess).Retry(cctx, func(rctx context.Context) error {
			var err error
			gt, err = core.Of(sess).GetW(rctx, full)
			return err
		})
		switch {
		case errors.Is(err, zk.ErrNoNode):
			continue
		case err != nil:
			return fmt.Errorf("membership: join %s as %q: %w", g.path, id, err)
		case gt.Stat.EphemeralOwner == sess.ID():
			return nil // ours: the lost reply's create landed
		}
		sess.Logger().Info("membership: id taken by another session; waiting for it to go",
			"group", g.path, "id", id, "owner", fmt.Sprintf("0x%x", gt.Stat.EphemeralOwner))
		select {
		case <-gt.Watch:
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("membership: join %s as %q: id held by session 0x%x: %w",
				g.path, id, gt.Stat.EphemeralOwner, context.Cause(ctx))
		case <-sess.Done():
			return fmt.Errorf("membership: join %s: %w", g.path, sess.Err())
		}
	}
}

// Members returns the group's members, sorted by id. Members that leave
// while being read are left out. On a Client it reads on the live session,
// and again on the next one if that session ends meanwhile.
func (g *Group) Members(ctx context.Context) ([]Member, error) {
	if err := g.check(ctx, "members"); err != nil {
		return nil, err
	}
	return contend.OnLive(ctx, g.binder, "membership: members of "+g.path, g.members)
}

func (g *Group) members(ctx context.Context, b *binding) ([]Member, error) {
	err := core.Of(b.Sess).Retry(ctx, b.Ready)
	var ms []Member
	if err == nil {
		ms, _, err = g.read(ctx, b, false)
	}
	if err != nil {
		return nil, fmt.Errorf("membership: members of %s: %w", g.path, err)
	}
	return ms, nil
}

// list returns the group's children (none while the group does not exist)
// and, when watch is set, a watch that fires at the next change (or at
// once, when the group appeared between our two reads).
func list(ctx context.Context, c core.Client, full string, watch bool) ([]string, <-chan zk.Event, error) {
	if !watch {
		ch, err := c.Children(ctx, full)
		if errors.Is(err, zk.ErrNoNode) {
			return nil, nil, nil
		}
		return ch, nil, err
	}
	ch, err := c.ChildrenW(ctx, full)
	if !errors.Is(err, zk.ErrNoNode) {
		return ch.Value, ch.Watch, err
	}
	ex, err := c.ExistsW(ctx, full) // fires when the group is created
	if err == nil && ex.Value {
		// Created between our two reads: an exists watch would not fire for
		// its children. Read again now.
		closed := make(chan zk.Event)
		close(closed)
		return nil, closed, nil
	}
	return nil, ex.Watch, err
}

// read lists the members, with a children watch when watch is set.
func (g *Group) read(ctx context.Context, b *binding, watch bool) ([]Member, <-chan zk.Event, error) {
	children, w, err := list(ctx, core.Of(b.Sess), b.V, watch)
	if err != nil {
		return nil, nil, err
	}
	ms := make([]Member, len(children))
	errs := make([]error, len(children))
	var wg sync.WaitGroup
	for i, id := range children {
		wg.Add(1)
		go func() { // pipelined on one connection
			defer wg.Done()
			n, err := core.Of(b.Sess).Get(ctx, b.V+"/"+id)
			if err != nil {
				errs[i] = err
				return
			}
			ms[i] = Member{ID: id, Data: n.Data, Session: n.Stat.EphemeralOwner, Joined: time.UnixMilli(n.Stat.Ctime)}
		}()
	}
	wg.Wait()
	out := ms[:0]
	for i, m := range ms {
		switch {
		case errs[i] == nil && m.Session != 0: // ephemeral members only
			out = append(out, m)
		case errs[i] == nil, errors.Is(errs[i], zk.ErrNoNode):
		default:
			return nil, nil, errs[i]
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, w, nil
}

// Watch returns a channel that receives the group's members (sorted by id)
// now and after every change, until ctx is done or the session is over,
// when it is closed. After each send it reads the group afresh: changes
// made while the reader is not receiving coalesce into the latest list. The
// same list is not sent twice in a row.
//
// On a Client the channel outlives sessions: it reads the group again on
// each new session (synced with the ensemble leader first) and is closed
// when ctx is done or the Client is closed. Changes made while it had no
// session coalesce like changes the reader did not receive.
func (g *Group) Watch(ctx context.Context) <-chan []Member {
	out := make(chan []Member)
	if g.check(ctx, "watch") != nil || !g.binder.Go(func() { g.watch(ctx, out) }) {
		close(out)
	}
	return out
}

func (g *Group) watch(ctx context.Context, out chan<- []Member) {
	contend.Stream(ctx, g.binder, out, "membership watch of "+g.path, func(ctx context.Context, b *binding) ([]Member, <-chan zk.Event, error) {
		return g.read(ctx, b, true)
	}, fingerprint)
}

func fingerprint(ms []Member) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s\x00%x\x00%x\x01", m.ID, m.Session, m.Data)
	}
	return b.String()
}
