package barrier

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// MemberKind is the name part of double-barrier participant nodes:
// "<path>/_c_<guid>-member-0000000003".
const MemberKind = "member-"

// readyNode is created when n participants have entered, so that a slow
// participant still sees the barrier open after others began to leave.
const readyNode = "ready"

var (
	// ErrFull is returned by Enter to a participant beyond the first n.
	ErrFull = errors.New("barrier: more than n participants entered")
	// ErrBroken is returned by Enter when a participant that had entered
	// left (its Enter was cancelled, or its session died) before n were in:
	// the barrier cannot open as planned. Our own node is removed; enter
	// again to retry.
	ErrBroken = errors.New("barrier: a participant left before the barrier opened")
	// ErrState is returned by Enter twice without Leave, or Leave without Enter.
	ErrState = errors.New("barrier: wrong state")
)

// DoubleBarrier lets n participants start and finish a computation
// together: Enter returns when n have entered, Leave returns when all have
// left.
//
// Protocol (the ZooKeeper recipe): each participant creates an ephemeral
// sequential node under the barrier path and watches the path's children
// until n are there; the one that sees n first creates the "ready" node,
// which opens the barrier for all. To leave, the lowest participant waits
// for the highest to go; every other one deletes its node and waits for
// the lowest to go; the last one out deletes "ready". Every wake-up
// re-reads the children: a wake-up alone proves nothing.
//
// Participants whose session dies: before the barrier opens, the others'
// Enter returns ErrBroken (they do not wait forever for a participant that
// is gone); after it opened, a dead participant's node is gone, which counts
// as having left, so Leave does not wait for it.
//
// A DoubleBarrier value is one participant; it is safe for concurrent use
// but Enter and Leave must alternate.
type DoubleBarrier struct {
	sess *recipes.Session
	path string
	n    int
	data []byte
	q    *contend.Queue
	err  error

	mu    sync.Mutex
	entry *contend.Entry
}

// NewDouble returns one participant of the double barrier at path for n
// participants; data is stored on its node. Bad arguments (n < 1, a nil
// session, an invalid path) are reported by Enter and Leave.
func NewDouble(sess *recipes.Session, path string, n int, data []byte) *DoubleBarrier {
	d := &DoubleBarrier{sess: sess, path: path, n: n, data: append([]byte(nil), data...)}
	d.q, d.err = contend.NewQueue("barrier", sess, path, []string{MemberKind}, nil)
	if d.err == nil && n < 1 {
		d.err = fmt.Errorf("barrier: double barrier %s needs n >= 1, got %d", path, n)
	}
	return d
}

func (d *DoubleBarrier) check(ctx context.Context, op string) error {
	if d.err != nil {
		return d.err
	}
	if ctx == nil {
		return fmt.Errorf("barrier: %s %s: nil context", op, d.path)
	}
	return nil
}

// Enter joins the barrier and blocks until n participants have entered
// (nil), ctx is done, the session is over, or the barrier broke (ErrBroken)
// or is full (ErrFull). On error our node is removed.
func (d *DoubleBarrier) Enter(ctx context.Context) error {
	if err := d.check(ctx, "enter"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.entry != nil {
		return fmt.Errorf("%w: enter %s twice without leave", ErrState, d.path)
	}
	e, list, err := d.q.Join(ctx, MemberKind, d.data, false)
	if err != nil {
		return fmt.Errorf("barrier: enter %s: %w", d.path, err)
	}
	if err := d.awaitReady(ctx, e, list); err != nil {
		d.q.Discard(ctx, e.Path)
		return fmt.Errorf("barrier: enter %s: %w", d.path, err)
	}
	d.entry = e
	return nil
}

// awaitReady waits for the barrier to open. first is the list read right
// after our node was created: its first n count as entered from the start.
func (d *DoubleBarrier) awaitReady(ctx context.Context, e *contend.Entry, first []contend.Node) error {
	entered := map[string]bool{} // participants seen among the first n
	for _, m := range first[:min(len(first), d.n)] {
		entered[m.Name] = true
	}
read:
	for {
		_, changed := d.sess.Changed()
		children, watch, err := d.childrenW(ctx)
		if err != nil {
			return err
		}
		members := contend.Sorted(children, d.q.Kinds)
		me := contend.Index(members, e.Node.Name)
		switch {
		case me < 0:
			if serr := d.sess.Err(); serr != nil {
				return serr
			}
			return fmt.Errorf("%w: %s", contend.ErrNodeGone, e.Path)
		case me >= d.n:
			return fmt.Errorf("%w (n = %d)", ErrFull, d.n)
		}
		for _, c := range children {
			if c == readyNode {
				// Open: but only for those who were in when it opened. A
				// node created after "ready" (its czxid is larger) arrived
				// after the n had gone through: it is one too many, even if
				// leavers have made its rank look like one of the first n.
				czxid, err := d.readyCzxid(ctx)
				switch {
				case errors.Is(err, zk.ErrNoNode):
					continue read // just removed by the last leaver: read again
				case err != nil:
					return err
				case e.Stat.Czxid > czxid:
					return fmt.Errorf("%w (n = %d): entered after the barrier opened", ErrFull, d.n)
				}
				return nil
			}
		}
		for name := range entered {
			if contend.Index(members, name) < 0 {
				return ErrBroken
			}
		}
		for _, m := range members[:min(len(members), d.n)] {
			entered[m.Name] = true
		}
		if len(members) >= d.n {
			err := recipes.Retry(ctx, d.sess, func(ctx context.Context) error {
				_, err := recipes.Call(ctx, d.sess, func(c *zk.Conn) (string, error) {
					return c.Create(d.q.Dir+"/"+readyNode, nil, zk.FlagPersistent, d.q.ACL)
				})
				if errors.Is(err, zk.ErrNodeExists) {
					return nil
				}
				return err
			})
			if err != nil {
				return err
			}
			return nil
		}
		select {
		case <-watch:
		case <-changed:
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-d.sess.Done():
			return d.sess.Err()
		}
	}
}

// Leave leaves the barrier and blocks until every participant has left
// (nil), ctx is done or the session is over. Participants whose session
// died count as having left.
func (d *DoubleBarrier) Leave(ctx context.Context) error {
	if err := d.check(ctx, "leave"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.entry == nil {
		return fmt.Errorf("%w: leave %s without enter", ErrState, d.path)
	}
	if err := d.awaitAllLeft(ctx, d.entry); err != nil {
		return fmt.Errorf("barrier: leave %s: %w", d.path, err)
	}
	d.entry = nil
	return nil
}

func (d *DoubleBarrier) awaitAllLeft(ctx context.Context, e *contend.Entry) error {
	for {
		if err := d.sess.Err(); err != nil {
			return err
		}
		_, changed := d.sess.Changed()
		var members []contend.Node
		err := recipes.Retry(ctx, d.sess, func(ctx context.Context) error {
			var err error
			members, err = d.q.List(ctx)
			return err
		})
		if err != nil {
			return err
		}
		me := contend.Index(members, e.Node.Name)
		var wait contend.Node
		switch {
		case len(members) == 0:
			return d.deleteReady(ctx)
		case me >= 0 && len(members) == 1:
			if err := d.q.Leave(ctx, e.Path); err != nil {
				return err
			}
			continue
		case me == 0:
			wait = members[len(members)-1] // the lowest waits for the highest
		default:
			if me > 0 {
				if err := d.q.Leave(ctx, e.Path); err != nil {
					return err
				}
			}
			wait = members[0] // the others wait for the lowest
		}
		watch, err := recipes.Call(ctx, d.sess, func(c *zk.Conn) (<-chan zk.Event, error) {
			_, _, w, err := c.GetW(d.q.Dir + "/" + wait.Name)
			return w, err
		})
		switch {
		case errors.Is(err, zk.ErrNoNode):
			continue
		case err != nil && !recipes.IsTransient(err):
			return err
		case err != nil:
			continue // re-read once connected
		}
		select {
		case <-watch:
		case <-changed:
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-d.sess.Done():
			return d.sess.Err()
		}
	}
}

func (d *DoubleBarrier) readyCzxid(ctx context.Context) (int64, error) {
	var czxid int64
	err := recipes.Retry(ctx, d.sess, func(ctx context.Context) error {
		var err error
		czxid, err = recipes.Call(ctx, d.sess, func(c *zk.Conn) (int64, error) {
			ok, st, err := c.Exists(d.q.Dir + "/" + readyNode)
			if err == nil && !ok {
				err = zk.ErrNoNode
			}
			if err != nil {
				return 0, err
			}
			return st.Czxid, nil
		})
		return err
	})
	return czxid, err
}

func (d *DoubleBarrier) deleteReady(ctx context.Context) error {
	return recipes.Retry(ctx, d.sess, func(ctx context.Context) error {
		_, err := recipes.Call(ctx, d.sess, func(c *zk.Conn) (struct{}, error) {
			return struct{}{}, c.Delete(d.q.Dir+"/"+readyNode, -1)
		})
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
}

func (d *DoubleBarrier) childrenW(ctx context.Context) ([]string, <-chan zk.Event, error) {
	type got struct {
		children []string
		watch    <-chan zk.Event
	}
	var g got
	err := recipes.Retry(ctx, d.sess, func(ctx context.Context) error {
		var err error
		g, err = recipes.Call(ctx, d.sess, func(c *zk.Conn) (got, error) {
			ch, _, w, err := c.ChildrenW(d.q.Dir)
			return got{ch, w}, err
		})
		return err
	})
	return g.children, g.watch, err
}
