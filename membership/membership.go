// Package membership implements group membership on ZooKeeper: who is
// alive now. Each member is an ephemeral node <path>/<id> whose data is the
// member's; it disappears when the member's session ends. Schedulers read
// Members or follow Watch to assign work to live workers.
//
// A member survives the loss of its session with Keep, which connects a new
// session and joins again with the same id whenever the old one is over.
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

	"github.com/zkrecipes/zkrecipes/recipes"
)

var (
	// ErrLeft is Membership.Err after Leave.
	ErrLeft = errors.New("membership: left the group")
	// ErrGone is wrapped by Membership.Err when the membership ended
	// because the session ended or the node was deleted.
	ErrGone = errors.New("membership: no longer a member")
)

// Group is a handle on the group at a path. It is safe for concurrent use.
type Group struct {
	sess *recipes.Session
	path string
	full string
	err  error
}

// New returns the group at path (relative to the chroot). Bad arguments
// are reported by its methods.
func New(sess *recipes.Session, path string) *Group {
	g := &Group{sess: sess, path: path}
	if sess == nil {
		g.err = fmt.Errorf("membership: %w", recipes.ErrNilSession)
	} else if err := recipes.ValidatePath(path); err != nil {
		g.err = fmt.Errorf("membership: %w", err)
	} else {
		g.full = sess.Path(path)
	}
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
	if g.err != nil {
		return g.err
	}
	if ctx == nil {
		return fmt.Errorf("membership: %s %s: nil context", op, g.path)
	}
	return nil
}

func validID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("membership: invalid member id %q (must be a non-empty znode name without '/')", id)
	}
	return nil
}

// Join adds this session to the group as id with data. If a node for id
// already exists and belongs to another session (a previous incarnation
// whose session has not expired yet, or another process using the same id),
// Join waits for it to go, bounded by ctx.
func (g *Group) Join(ctx context.Context, id string, data []byte) (*Membership, error) {
	if err := g.check(ctx, "join"); err != nil {
		return nil, err
	}
	if err := validID(id); err != nil {
		return nil, err
	}
	full := g.full + "/" + id
	for {
		_, changed := g.sess.Changed()
		_, err := recipes.Call(ctx, g.sess, func(c *zk.Conn) (string, error) {
			return c.Create(full, data, zk.FlagEphemeral, g.sess.ACL())
		})
		switch {
		case err == nil:
			return g.watchMember(ctx, id, full)
		case errors.Is(err, zk.ErrNoNode):
			if err := ensureParents(ctx, g.sess, g.full); err != nil {
				return nil, fmt.Errorf("membership: join %s: %w", g.path, err)
			}
			continue
		case recipes.IsTransient(err):
			// The create may have landed: look at the node's owner.
		case !errors.Is(err, zk.ErrNodeExists):
			return nil, fmt.Errorf("membership: join %s as %q: %w", g.path, id, err)
		}
		type got struct {
			stat  *zk.Stat
			watch <-chan zk.Event
		}
		var gt got
		err = recipes.Retry(ctx, g.sess, func(ctx context.Context) error {
			var err error
			gt, err = recipes.Call(ctx, g.sess, func(c *zk.Conn) (got, error) {
				_, st, w, err := c.GetW(full)
				return got{st, w}, err
			})
			return err
		})
		switch {
		case errors.Is(err, zk.ErrNoNode):
			continue
		case err != nil:
			return nil, fmt.Errorf("membership: join %s as %q: %w", g.path, id, err)
		case gt.stat.EphemeralOwner == g.sess.ID():
			return g.watchMember(ctx, id, full) // ours: the lost reply's create landed
		}
		g.sess.Logger().Info("membership: id taken by another session; waiting for it to go",
			"group", g.path, "id", id, "owner", fmt.Sprintf("0x%x", gt.stat.EphemeralOwner))
		select {
		case <-gt.watch:
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("membership: join %s as %q: id held by session 0x%x: %w",
				g.path, id, gt.stat.EphemeralOwner, context.Cause(ctx))
		case <-g.sess.Done():
			return nil, fmt.Errorf("membership: join %s: %w", g.path, g.sess.Err())
		}
	}
}

// Members returns the group's members, sorted by id. Members that leave
// while being read are left out.
func (g *Group) Members(ctx context.Context) ([]Member, error) {
	if err := g.check(ctx, "members"); err != nil {
		return nil, err
	}
	ms, _, err := g.read(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("membership: members of %s: %w", g.path, err)
	}
	return ms, nil
}

// read lists the members, with a children watch when watch is set.
func (g *Group) read(ctx context.Context, watch bool) ([]Member, <-chan zk.Event, error) {
	type got struct {
		children []string
		watch    <-chan zk.Event
	}
	gt, err := recipes.Call(ctx, g.sess, func(c *zk.Conn) (got, error) {
		if watch {
			ch, _, w, err := c.ChildrenW(g.full)
			if errors.Is(err, zk.ErrNoNode) {
				exists, _, w, err := c.ExistsW(g.full) // fires when the group is created
				if err == nil && exists {
					// Created between our two reads: an exists watch would
					// not fire for its children. Read again now.
					closed := make(chan zk.Event)
					close(closed)
					return got{nil, closed}, nil
				}
				return got{nil, w}, err
			}
			return got{ch, w}, err
		}
		ch, _, err := c.Children(g.full)
		if errors.Is(err, zk.ErrNoNode) {
			return got{}, nil
		}
		return got{ch, nil}, err
	})
	if err != nil {
		return nil, nil, err
	}
	ms := make([]Member, len(gt.children))
	errs := make([]error, len(gt.children))
	var wg sync.WaitGroup
	for i, id := range gt.children {
		wg.Add(1)
		go func() { // pipelined on one connection
			defer wg.Done()
			type node struct {
				data []byte
				stat *zk.Stat
			}
			n, err := recipes.Call(ctx, g.sess, func(c *zk.Conn) (node, error) {
				d, st, err := c.Get(g.full + "/" + id)
				return node{d, st}, err
			})
			if err != nil {
				errs[i] = err
				return
			}
			ms[i] = Member{ID: id, Data: n.data, Session: n.stat.EphemeralOwner, Joined: time.UnixMilli(n.stat.Ctime)}
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
	return out, gt.watch, nil
}

// Watch returns a channel that receives the group's members (sorted by id)
// now and after every change, until ctx is done or the session is over,
// when it is closed. After each send it reads the group afresh: changes
// made while the reader is not receiving coalesce into the latest list. The
// same list is not sent twice in a row.
func (g *Group) Watch(ctx context.Context) <-chan []Member {
	out := make(chan []Member)
	if g.check(ctx, "watch") != nil || !g.sess.Go(func() { g.watch(ctx, out) }) {
		close(out)
	}
	return out
}

func (g *Group) watch(ctx context.Context, out chan<- []Member) {
	defer close(out)
	var last string
	sent := false
	for {
		_, changed := g.sess.Changed()
		var (
			ms    []Member
			watch <-chan zk.Event
		)
		err := recipes.Retry(ctx, g.sess, func(ctx context.Context) error {
			var err error
			ms, watch, err = g.read(ctx, true)
			return err
		})
		if err != nil {
			if ctx.Err() == nil && g.sess.Err() == nil {
				g.sess.Logger().Warn("membership watch stopped", "group", g.path, "err", err)
			}
			return
		}
		if key := fingerprint(ms); !sent || key != last {
			select {
			case out <- ms:
				last, sent = key, true
			case <-ctx.Done():
				return
			case <-g.sess.Done():
				return
			}
			continue // read afresh: changes may have happened meanwhile
		}
		select {
		case <-watch:
		case <-changed:
		case <-ctx.Done():
			return
		case <-g.sess.Done():
			return
		}
	}
}

func fingerprint(ms []Member) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s\x00%x\x00%x\x01", m.ID, m.Session, m.Data)
	}
	return b.String()
}

func ensureParents(ctx context.Context, sess *recipes.Session, full string) error {
	for i := 1; i <= len(full); i++ {
		if i < len(full) && full[i] != '/' {
			continue
		}
		_, err := recipes.Call(ctx, sess, func(c *zk.Conn) (string, error) {
			return c.Create(full[:i], nil, zk.FlagPersistent, sess.ACL())
		})
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return err
		}
	}
	return nil
}
