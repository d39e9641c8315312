package barrier

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// MemberKind is the name part of double-barrier participant nodes:
// "<path>/_c_<guid>-member-0000000003".
const MemberKind = "member-"

// MarkerPrefix starts the name of a round's open marker:
// "<path>/ready-<seq>-<guid>", after the sequence number and guid of the
// round's lowest member. Its data lists the round's member node names, one
// a line.
const MarkerPrefix = "ready-"

// markerName matches the markers this package writes (the guid is empty
// only for a lowest member with an unprotected name).
var markerName = regexp.MustCompile(`^ready-[0-9]{10}-([0-9a-f]{32})?$`)

var (
	// ErrFull is returned by Enter to a participant beyond the first n,
	// including one that arrives while an opened round on the path still
	// has members.
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
// left. Successive rounds may use the same path; every participant of a
// path must use the same n.
//
// Protocol. Each participant creates an ephemeral sequential member node
// under the barrier path and watches the path's children. A participant
// that sees n members (and no open round) opens the round with one Multi:
// a check that each of the first n member nodes exists, and the create of
// a persistent marker "ready-<seq>-<guid>" named after the lowest of them,
// whose data lists the n member names. The round is that list: it opened
// at an instant when all n nodes existed, and a second opener of the same
// round gets NodeExists. Enter returns nil once a marker lists our node.
//
// A marker is live while at least one of its members' nodes exists; once
// none does, its round is over for good (member nodes are never
// re-created, and a Multi that names a deleted member fails), so anyone who
// sees that may delete it: the round's last leaver does, and so does a new
// entrant that finds one left behind by participants that all died. A
// marker never blocks a later round, and as its name is unique to its
// round, deleting it never touches another round. An entrant that sees a
// live marker without its own name gets ErrFull: the round is running
// without it.
//
// To leave, a participant considers only the members of its own round: the
// lowest waits for the highest to go; every other one deletes its node and
// waits for the lowest to go. Members of a later round are never waited
// for, so a slow leaver cannot hold up, or be held up by, the next round.
// Every wake-up re-reads the children: a wake-up alone proves nothing.
//
// Participants whose session dies: before the barrier opens, the others'
// Enter returns ErrBroken (they do not wait forever for a participant that
// is gone); after it opened, a dead participant's node is gone, which counts
// as having left, so Leave does not wait for it. If every participant of a
// round dies, its marker stays until the next entrant removes it.
//
// A DoubleBarrier value is one participant; it is safe for concurrent use
// but Enter and Leave must alternate.
type DoubleBarrier struct {
	src  recipes.Source
	sess *recipes.Session // the session of the current (or last) Enter
	path string
	n    int
	opts options
	q    *contend.Queue
	err  error

	mu     sync.Mutex
	entry  *contend.Entry
	marker string   // our round's marker (name under the path)
	round  []string // our round's member node names
}

// NewDoubleBarrier returns one participant of the double barrier at path
// for n participants (WithData stores data on its node). src is a Session, or a Client:
// then each Enter takes the Client's live session (waiting for one), and
// the participant stays on it until Leave; if that session is lost, the
// participant counts as having left, as any dead participant does. Bad
// arguments (n < 1, a nil source, an invalid path) are reported by Enter
// and Leave.
func NewDoubleBarrier(src recipes.Source, path string, n int, opts ...Option) *DoubleBarrier {
	d := &DoubleBarrier{src: src, path: path, n: n}
	if d.err = core.Setup("barrier", &d.opts, opts, recipes.CheckSource(src), path); d.err != nil {
		return d
	}
	if sess, ok := src.(*recipes.Session); ok {
		d.sess = sess
		d.q, d.err = contend.NewQueue("barrier", sess, path, []string{MemberKind}, d.opts.acl)
	}
	if d.err == nil && n < 1 {
		d.err = fmt.Errorf("barrier: double barrier %s needs n >= 1, got %d", path, n)
	}
	return d
}

// bind points d at a live session of its source for an Enter (a Client's
// current one, its server synced with the leader). Callers hold d.mu.
func (d *DoubleBarrier) bind(ctx context.Context) error {
	if !d.src.Lasting() {
		return nil // the Session given to NewDoubleBarrier
	}
	sess, err := d.src.Live(ctx)
	if err != nil {
		return err
	}
	if sess != d.sess {
		q, err := contend.NewQueue("barrier", sess, d.path, []string{MemberKind}, d.opts.acl)
		if err != nil {
			return err
		}
		d.sess, d.q = sess, q
	}
	return core.Of(sess).Retry(ctx, func(ctx context.Context) error { return sess.SyncOnce(ctx, d.q.Dir) })
}

func (d *DoubleBarrier) check(ctx context.Context, op string) error {
	return core.Check(ctx, d.err, "barrier", op, d.path)
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
	if err := d.bind(ctx); err != nil {
		return fmt.Errorf("barrier: enter %s: %w", d.path, err)
	}
	e, first, err := d.q.Join(ctx, MemberKind, d.opts.data, false, nil)
	if err != nil {
		return fmt.Errorf("barrier: enter %s: %w", d.path, err)
	}
	marker, round, err := d.awaitOpen(ctx, e, first)
	if err != nil {
		d.q.Discard(ctx, e.Path)
		return fmt.Errorf("barrier: enter %s: %w", d.path, err)
	}
	d.entry, d.marker, d.round = e, marker, round
	return nil
}

// awaitOpen waits until a marker lists our node and returns it with its
// round. first is the list read right after our node was created.
func (d *DoubleBarrier) awaitOpen(ctx context.Context, e *contend.Entry, first []contend.Node) (string, []string, error) {
	// At rank n or beyond right after our create, we were one too many:
	// either n others were waiting, or a round was running.
	if me := contend.Index(first, e.Node.Name); me >= d.n {
		return "", nil, fmt.Errorf("%w (n = %d)", ErrFull, d.n)
	}
	rounds := map[string][]string{} // marker name -> its members (immutable)
	// Participants seen among the first n while no round was live. Any
	// round that opens after such a listing includes us, so one of them
	// gone with no marker naming us means it left before the barrier
	// opened.
	entered := map[string]bool{}
	// The list read right after our create counts too: a participant that
	// dies before our first read below must still break the barrier, or we
	// would wait for it forever. (In the rare case that it belonged to a
	// round that ended in between, Enter returns ErrBroken and may be
	// retried.)
	for _, m := range first[:min(len(first), d.n)] {
		entered[m.Name] = true
	}
	for {
		_, changed := d.q.Sess.Changed()
		children, watch, err := d.childrenW(ctx)
		if err != nil {
			return "", nil, err
		}
		members := contend.Sorted(children, d.q.Kinds)
		me := contend.Index(members, e.Node.Name)
		if me < 0 {
			if serr := d.sess.Err(); serr != nil {
				return "", nil, serr
			}
			return "", nil, fmt.Errorf("%w: %s", contend.ErrNodeGone, e.Path)
		}
		present := map[string]bool{}
		for _, m := range members {
			present[m.Name] = true
		}
		for _, c := range children {
			if !markerName.MatchString(c) {
				continue
			}
			round, ok := rounds[c]
			if !ok {
				round, err = d.readMarker(ctx, c)
				switch {
				case errors.Is(err, zk.ErrNoNode):
					continue // removed: its round was over
				case err != nil:
					return "", nil, err
				}
				rounds[c] = round
			}
			if round == nil {
				continue // not one of ours
			}
			live := false
			for _, m := range round {
				if m == e.Node.Name {
					return c, round, nil
				}
				live = live || present[m]
			}
			if live {
				return "", nil, fmt.Errorf("%w (n = %d): a round opened without us", ErrFull, d.n)
			}
			d.deleteStale(ctx, c)
		}
		if me >= d.n {
			return "", nil, fmt.Errorf("%w (n = %d)", ErrFull, d.n)
		}
		for name := range entered {
			if !present[name] {
				return "", nil, ErrBroken
			}
		}
		for _, m := range members[:min(len(members), d.n)] {
			entered[m.Name] = true
		}
		if len(members) >= d.n {
			if err := d.open(ctx, members[:d.n]); err != nil {
				return "", nil, err
			}
			continue // read the outcome: our marker, or why not
		}
		select {
		case <-watch:
		case <-changed:
		case <-ctx.Done():
			return "", nil, context.Cause(ctx)
		case <-d.sess.Done():
			return "", nil, d.sess.Err()
		}
	}
}

// open tries to open the round of members: the marker is created only if
// every member's node still exists. A refusal (a member left, another
// opener was first) or a lost reply is settled by the next listing.
func (d *DoubleBarrier) open(ctx context.Context, members []contend.Node) error {
	ops := make([]any, 0, len(members)+1)
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.Name
		ops = append(ops, &zk.CheckVersionRequest{Path: d.q.Dir + "/" + m.Name, Version: -1})
	}
	low := members[0]
	name := fmt.Sprintf("%s%010d-%s", MarkerPrefix, low.Seq, low.GUID)
	ops = append(ops, &zk.CreateRequest{
		Path:  d.q.Dir + "/" + name,
		Data:  []byte(strings.Join(names, "\n")),
		Acl:   d.q.ACL,
		Flags: zk.FlagPersistent,
	})
	_, err := d.q.Sess.Multi(ctx, ops...)
	switch {
	case err == nil, errors.Is(err, zk.ErrNodeExists), errors.Is(err, zk.ErrNoNode), recipes.IsTransient(err):
		return nil
	}
	return fmt.Errorf("open round %s: %w", name, err)
}

// readMarker returns the members a marker lists, or nil when its data is
// not a list of member names (not one of ours: ignored, never deleted).
func (d *DoubleBarrier) readMarker(ctx context.Context, name string) ([]string, error) {
	var data []byte
	err := d.q.Sess.Retry(ctx, func(ctx context.Context) error {
		n, err := d.q.Sess.Get(ctx, d.q.Dir+"/"+name)
		data = n.Data
		return err
	})
	if err != nil {
		return nil, err
	}
	round := strings.Split(string(data), "\n")
	for _, m := range round {
		if _, ok := contend.Parse(m, d.q.Kinds); !ok {
			return nil, nil
		}
	}
	return round, nil
}

// deleteStale removes a marker whose members are all gone. It is only
// tidying: a stale marker blocks nobody, so a failure is logged and the
// node is left for the next entrant.
func (d *DoubleBarrier) deleteStale(ctx context.Context, name string) {
	err := d.deleteMarker(ctx, name)
	if err != nil && ctx.Err() == nil && d.sess.Err() == nil {
		d.sess.Logger().Debug("barrier: could not delete a stale round marker", "path", d.q.Dir+"/"+name, "err", err)
	}
}

// Leave leaves the barrier and blocks until every participant of our round
// has left (nil), ctx is done or the session is over. Participants whose
// session died count as having left; participants of a later round on the
// same path are not waited for. After an error, Leave may be called again
// to finish leaving.
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
		if d.sess.Err() != nil {
			// Our node ended with the session: we have left. On a Client
			// the participant may Enter again, on the next session.
			d.entry, d.marker, d.round = nil, "", nil
		}
		return fmt.Errorf("barrier: leave %s: %w", d.path, err)
	}
	d.entry, d.marker, d.round = nil, "", nil
	return nil
}

func (d *DoubleBarrier) awaitAllLeft(ctx context.Context, e *contend.Entry) error {
	ours := map[string]bool{}
	for _, m := range d.round {
		ours[m] = true
	}
	for {
		if err := d.sess.Err(); err != nil {
			return err
		}
		_, changed := d.q.Sess.Changed()
		var all []contend.Node
		err := d.q.Sess.Retry(ctx, func(ctx context.Context) error {
			var err error
			all, err = d.q.List(ctx)
			return err
		})
		if err != nil {
			return err
		}
		var members []contend.Node // our round's members still in, in order
		for _, m := range all {
			if ours[m.Name] {
				members = append(members, m)
			}
		}
		me := contend.Index(members, e.Node.Name)
		var wait contend.Node
		switch {
		case len(members) == 0:
			// Our round is over: its marker is stale, and its name is
			// ours alone.
			return d.deleteMarker(ctx, d.marker)
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
		watch, err := core.WatchOf(d.q.Sess.GetW(ctx, d.q.Dir+"/"+wait.Name))
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

func (d *DoubleBarrier) deleteMarker(ctx context.Context, name string) error {
	return d.q.Sess.Retry(ctx, func(ctx context.Context) error {
		err := d.q.Sess.Delete(ctx, d.q.Dir+"/"+name, -1)
		if errors.Is(err, zk.ErrNoNode) {
			return nil
		}
		return err
	})
}

func (d *DoubleBarrier) childrenW(ctx context.Context) ([]string, <-chan zk.Event, error) {
	var g core.Watched[[]string]
	err := d.q.Sess.Retry(ctx, func(ctx context.Context) error {
		var err error
		g, err = d.q.Sess.ChildrenW(ctx, d.q.Dir)
		return err
	})
	return g.Value, g.Watch, err
}
