package contend

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
)

// ErrBlocked is returned by Wait in try mode when another contender blocks us.
var ErrBlocked = errors.New("contend: blocked by another contender")

// ErrNodeGone is returned when our own contender node disappeared while we
// waited (deleted by someone else, or by the end of our session).
var ErrNodeGone = fmt.Errorf("contend: our contender node is gone: %w", ErrNodeDeleted)

// Queue is one contender queue: the children of Dir.
type Queue struct {
	Sess  core.Client
	Dir   string   // full path (chroot applied) of the parent
	Kinds []string // the child kinds that take part in this queue
	ACL   []zk.ACL
}

// Entry is our place in the queue.
type Entry struct {
	Node  Node
	Path  string          // full path of our node
	Stat  zk.Stat         // Czxid (the token) and EphemeralOwner; the rest only when read
	Watch <-chan zk.Event // a watch on our node, when Join was asked for one
	// Suspensions is the session's Suspensions count read just before the
	// list Join returned was read; Wait moves it to the count its decision
	// rests on, and NewHold checks it.
	Suspensions uint64
}

// Join creates our protected ephemeral-sequential node of the given kind and
// returns it with a fresh list of the contenders, in queue order, which
// includes us: all of them when blocks is nil, else only what Wait needs
// to decide with blocks (Ahead).
//
// The node's czxid (its fencing token) and owner come from the create's
// reply, so an acquisition costs one create and one children list. The
// stat is read too only when the reply was not seen, as after a recovered
// lost reply, or when watch is set: then the read also leaves a watch on
// our node, which fires when the node is deleted or its data changes (and
// costs one notification at release). The reads follow the create in the
// same goroutine (readAfterCreate), so a cancellable ctx costs one
// goroutine hop for all three.
//
// On any failure after the create was sent, our node is found by its guid
// and deleted, now or in the background.
func (q *Queue) Join(ctx context.Context, kind string, data []byte, watch bool, blocks Blocker) (*Entry, []Node, error) {
	guid := NewGUID()
	full, first, err := q.create(ctx, guid, kind, data, watch)
	if err != nil {
		return nil, nil, err
	}
	e := &Entry{Path: full}
	e.Node, _ = Parse(path.Base(full), []string{kind})
	if first == nil {
		r := q.readAfterCreate(ctx, full, watch, ctx.Done() == nil)
		first = &r
	}
	e.Suspensions, e.Watch = first.suspensions, first.watch
	children, listErr, stat, statErr := first.children, first.listErr, first.stat, first.statErr
	// Both reads are retried across a connection blip: the node is ours
	// and stays (a suspension meanwhile is caught by e.Suspensions).
	if listErr != nil && core.IsTransient(listErr) {
		children, listErr = q.retryChildren(ctx)
	}
	if statErr != nil && core.IsTransient(statErr) {
		statErr = q.Sess.Retry(ctx, func(ctx context.Context) (err error) {
			stat, e.Watch, _, err = q.stat(ctx, e.Path, watch)
			return err
		})
	}
	if err := errors.Join(statErr, listErr); err != nil {
		q.Discard(ctx, full)
		if errors.Is(statErr, zk.ErrNoNode) {
			return nil, nil, q.lostErr(fmt.Errorf("%w right after creation", ErrNodeGone))
		}
		return nil, nil, q.wrap("read new contender", err)
	}
	if stat != nil {
		e.Stat = *stat
	} else { // from the create reply
		e.Stat = zk.Stat{Czxid: first.reply.Czxid, EphemeralOwner: first.reply.Session}
	}
	if owner := q.Sess.ID(); e.Stat.EphemeralOwner != owner || q.Sess.Err() != nil {
		q.Discard(ctx, full)
		return nil, nil, q.lostErr(fmt.Errorf("contend: node %s belongs to session 0x%x, not ours (0x%x)", full, e.Stat.EphemeralOwner, owner))
	}
	children = q.dropDuplicates(children, e.Node)
	if blocks == nil {
		return e, Sorted(children, q.Kinds), nil
	}
	return e, Ahead(children, q.Kinds, e.Node.Seq, blocks), nil
}

// dropDuplicates deletes, and leaves out of children, the nodes that are
// ours but not our node: a create of ours that landed twice (recovered
// after a lost reply), where only one node may stand for us. Such a node's
// name differs from ours only in its sequence suffix (same guid, same kind).
func (q *Queue) dropDuplicates(children []string, ours Node) []string {
	if ours.GUID == "" || len(ours.Name) <= seqDigits {
		return children
	}
	prefix := ours.Name[:len(ours.Name)-seqDigits]
	var kept []string // a copy, made at the first duplicate (rare)
	for i, c := range children {
		dup := len(c) == len(ours.Name) && c[:len(prefix)] == prefix && c != ours.Name
		switch {
		case dup && kept == nil:
			kept = append(make([]string, 0, len(children)-1), children[:i]...)
			q.Abandon(q.Dir+"/"+c, "duplicate")
		case dup:
			q.Abandon(q.Dir+"/"+c, "duplicate")
		case kept != nil:
			kept = append(kept, c)
		}
	}
	if kept == nil {
		return children
	}
	return kept
}

// firstRead is what Join reads right after its create: the parent's
// children and our node's stat (from the create reply the connection
// observer saw, or read, with a watch when asked).
type firstRead struct {
	suspensions uint64 // the session's Suspensions count before the list was read
	children    []string
	listErr     error
	stat        *zk.Stat     // nil when reply gives the czxid and owner
	reply       core.Created // the create reply, as the connection observer saw it
	statErr     error
	watch       <-chan zk.Event
}

// readAfterCreate makes Join's first reads of our new node full. When the
// create reply was seen and no watch is wanted, it only lists the parent;
// otherwise it also reads our node's stat (leaving a watch when watch is
// set). direct says that ctx cannot end (context.Background() in the
// goroutine that sent the create, see create below, or the caller's own
// such context): the reads then go one after the other, straight to
// go-zookeeper, each tried once. Otherwise the list runs in a goroutine of
// the session's beside the stat, ctx bounds the waits and the stat is
// retried. Join retries the other transient errors under its own context.
func (q *Queue) readAfterCreate(ctx context.Context, full string, watch, direct bool) (r firstRead) {
	reply, seen := q.Sess.TakeCreated(full)
	r.suspensions = q.Sess.Suspensions()
	if seen && !watch {
		r.children, r.listErr = q.children(ctx)
		r.reply = reply // no stat to read
		return r
	}
	if direct {
		// Read after read: a read costs a round trip and no fsync, less
		// than the goroutine that would overlap them.
		r.children, r.listErr = q.children(ctx)
		r.stat, r.watch, _, r.statErr = q.stat(ctx, full, watch)
		return r
	}
	type listing struct {
		children []string
		err      error
	}
	listed := make(chan listing, 1) // the goroutine never blocks on it
	if !q.Sess.Go(func() {
		ch, err := q.children(context.Background()) // no cancellable context: no goroutine of its own
		listed <- listing{ch, err}
	}) {
		r.listErr = core.ErrClosed
		return r
	}
	r.statErr = q.Sess.Retry(ctx, func(ctx context.Context) (err error) {
		r.stat, r.watch, _, err = q.stat(ctx, full, watch)
		return err
	})
	select {
	case l := <-listed:
		r.children, r.listErr = l.children, l.err
	case <-ctx.Done():
		r.listErr = context.Cause(ctx)
	case <-q.Sess.Done():
		r.listErr = q.Sess.Err()
	}
	return r
}

// lostErr returns the session's end if it is over, else err.
func (q *Queue) lostErr(err error) error {
	if serr := q.Sess.Err(); serr != nil {
		return serr
	}
	return err
}

func (q *Queue) wrap(op string, err error) error {
	if serr := q.Sess.Err(); serr != nil && !errors.Is(err, serr) {
		return fmt.Errorf("%s %s: %w (session over: %w)", op, q.Dir, err, serr)
	}
	return fmt.Errorf("%s %s: %w", op, q.Dir, err)
}

type created struct {
	path  string
	err   error
	first *firstRead // Join's first reads, made by the goroutine that sent the create
}

// create creates the contender node, creating container parents as needed
// and recovering the node by guid when a reply is lost. With a context that
// can end, the create runs in a goroutine of the session's (go-zookeeper's
// calls take no context), and that goroutine also makes Join's first reads
// (readAfterCreate) once the create succeeded, returned as first: one
// goroutine hop for the create and the list, not one each. If ctx ends
// meanwhile, the node is deleted as soon as the create's answer is in,
// whether or not the reads are done. first is nil when the reads are left
// to the caller.
func (q *Queue) create(ctx context.Context, guid, kind string, data []byte, watch bool) (string, *firstRead, error) {
	prefix := q.Dir + "/" + core.NamePrefix(guid, kind)
	for {
		if err := context.Cause(ctx); err != nil {
			return "", nil, err // send nothing that would need undoing
		}
		var r created
		if ctx.Done() == nil {
			// Nothing can cancel the wait: no goroutine needed.
			r.path, r.err = q.Sess.Conn().Create(prefix, data, zk.FlagEphemeral|zk.FlagSequence, q.ACL)
		} else {
			// res has the create's answer as soon as it comes, for
			// discardCreate; out has it again with the first reads, for us.
			res, out := make(chan created, 1), make(chan created, 1)
			if !q.Sess.Go(func() {
				p, err := q.Sess.Conn().Create(prefix, data, zk.FlagEphemeral|zk.FlagSequence, q.ACL)
				c := created{path: p, err: err}
				res <- c
				if err == nil {
					first := q.readAfterCreate(context.Background(), p, watch, true)
					c.first = &first
				}
				out <- c
			}) {
				return "", nil, core.ErrClosed
			}
			select {
			case r = <-out:
			case <-ctx.Done():
				q.discardCreate(ctx, guid, res)
				return "", nil, context.Cause(ctx)
			case <-q.Sess.Done():
				return "", nil, q.Sess.Err() // the node, if any, ends with the session
			}
		}
		switch {
		case r.err == nil:
			return r.path, r.first, nil
		case errors.Is(r.err, zk.ErrNoNode):
			if err := q.EnsurePath(ctx, q.Dir, nil); err != nil {
				return "", nil, err
			}
		case core.IsTransient(r.err):
			// The create may have landed: look for our guid once connected.
			p, err := q.findOwn(ctx, guid)
			if err != nil {
				if ctx.Err() != nil {
					q.discardCreate(ctx, guid, nil)
				}
				return "", nil, err
			}
			if p != "" {
				return p, nil, nil
			}
		default:
			return "", nil, q.lostErrOr(q.wrap("create contender in", r.err))
		}
	}
}

func (q *Queue) lostErrOr(err error) error {
	if serr := q.Sess.Err(); serr != nil {
		return fmt.Errorf("%w: %w", serr, err)
	}
	return err
}

// findOwn lists the parent after a lost create reply and returns the path
// of our node if the create landed under our session. A node carrying our
// guid but owned by another (older) session is not ours: it is deleted.
func (q *Queue) findOwn(ctx context.Context, guid string) (string, error) {
	var found string
	err := q.Sess.Retry(ctx, func(ctx context.Context) error {
		found = ""
		// After a reconnect we may talk to a server that has not applied
		// our create yet: sync it with the leader before listing.
		children, err := q.syncedChildren(ctx)
		if err != nil {
			return err
		}
		var mine []Node
		for _, c := range children {
			if !hasGUID(c, guid) {
				continue
			}
			p := q.Dir + "/" + c
			ok, st, err := q.Sess.Exists(ctx, p)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if st.EphemeralOwner != q.Sess.ID() {
				q.Abandon(p, "foreign_guid") // an older session's: not ours
				continue
			}
			if n, ok := Parse(c, q.Kinds); ok {
				mine = append(mine, n)
			}
		}
		// Keep the lowest node of ours; any other (a create that landed
		// twice) would block us behind ourselves.
		sorted := Sorted(names(mine), q.Kinds)
		for i, n := range sorted {
			if i == 0 {
				found = q.Dir + "/" + n.Name
				continue
			}
			q.Abandon(q.Dir+"/"+n.Name, "duplicate")
		}
		return nil
	})
	if err != nil {
		return "", q.wrap("recover contender in", err)
	}
	return found, nil
}

func names(ns []Node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Name
	}
	return out
}

// syncedChildren lists the parent after syncing the server we talk to with
// the leader, so the list reflects every write committed before.
func (q *Queue) syncedChildren(ctx context.Context) ([]string, error) {
	if err := q.Sess.Sync(ctx, q.Dir); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return nil, err
	}
	return q.children(ctx)
}

// stat reads the stat of full, with a data watch when watch is set (GetW:
// a missing node leaves no watch behind).
func (q *Queue) stat(ctx context.Context, full string, watch bool) (*zk.Stat, <-chan zk.Event, []byte, error) {
	if watch {
		g, err := q.Sess.GetW(ctx, full)
		return g.Stat, g.Watch, g.Value, err
	}
	ok, st, err := q.Sess.Exists(ctx, full)
	if err == nil && !ok {
		err = zk.ErrNoNode
	}
	return st, nil, nil, err
}

// discardCreate undoes a create we gave up on because ctx is done: it waits
// for the create's answer (res; nil when it already came back with a
// connection error) and deletes what the create made, found by its guid
// when the answer was lost. It works under a context detached from ctx and
// bounded by the session timeout, so that normally no node is left when the
// caller's Acquire returns; what it cannot finish in time goes on in the
// background (abandonCreate, Abandon).
func (q *Queue) discardCreate(ctx context.Context, guid string, res <-chan created) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.Sess.Timeout())
	defer cancel()
	if res != nil {
		select {
		case r := <-res:
			switch {
			case r.err == nil:
				q.Sess.Observer().Cleaned("discarded", q.Leave(dctx, r.path))
				return
			case !core.IsTransient(r.err):
				return // refused: nothing was created
			}
		case <-dctx.Done():
			q.abandonCreate(guid, res)
			return
		case <-q.Sess.Done():
			return // the node, if any, ends with the session
		}
	}
	// The answer was lost: the create may have landed.
	err := q.Sess.Retry(dctx, func(ctx context.Context) error { return q.deleteGUID(ctx, guid) })
	if err != nil && q.Sess.Err() == nil {
		q.abandonCreate(guid, nil)
	}
}

// abandonCreate hands the cleanup of a create we stopped waiting for to the
// session: wait for the create's own answer (a later listing could miss a
// create still in flight), then delete what it made.
func (q *Queue) abandonCreate(guid string, res <-chan created) {
	q.Sess.Cleanup("abandoned contender "+q.Dir+"/"+ProtectedPrefix+guid, func(ctx context.Context) error {
		if res != nil {
			select {
			case r := <-res:
				res = nil
				if r.err == nil {
					err := q.deletePath(ctx, r.path)
					if err == nil {
						q.Sess.Observer().Cleaned("lost_reply", nil)
					}
					return err
				}
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		err := q.deleteGUID(ctx, guid)
		if err == nil {
			q.Sess.Observer().Cleaned("lost_reply", nil)
		}
		return err
	})
}

// Abandon deletes our node at full path, now if possible, else in the
// background until it is gone or the session is over.
// reason labels the cleanup metric (abandoned, after_loss...).
func (q *Queue) Abandon(full, reason string) {
	q.Sess.Cleanup("contender "+full, func(ctx context.Context) error {
		err := q.deletePath(ctx, full)
		if err == nil {
			q.Sess.Observer().Cleaned(reason, nil)
		}
		return err
	})
}

// Discard deletes our node after a failed or cancelled acquisition: at once
// under a context detached from ctx and bounded by the session timeout, then
// in the background if that fails. The caller's cancellation does not stop it.
func (q *Queue) Discard(ctx context.Context, full string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.Sess.Timeout())
	defer cancel()
	q.Sess.Observer().Cleaned("discarded", q.Leave(dctx, full))
}

// Leave deletes our node, retrying across disconnects until ctx is done.
// When ctx ends first the delete goes on in the background and Leave
// returns ctx's cause.
func (q *Queue) Leave(ctx context.Context, full string) error {
	err := q.Sess.Retry(ctx, func(ctx context.Context) error { return q.deletePath(ctx, full) })
	if err != nil && q.Sess.Err() == nil {
		q.Abandon(full, "abandoned")
	}
	return err
}

func (q *Queue) deletePath(ctx context.Context, full string) error {
	err := q.Sess.Delete(ctx, full, -1)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	return err
}

func (q *Queue) deleteGUID(ctx context.Context, guid string) error {
	children, err := q.syncedChildren(ctx)
	if err != nil {
		return err
	}
	for _, c := range children {
		if hasGUID(c, guid) {
			if err := q.deletePath(ctx, q.Dir+"/"+c); err != nil {
				return err
			}
		}
	}
	return nil
}

// retryChildren lists the parent, waiting out a disconnect.
func (q *Queue) retryChildren(ctx context.Context) (children []string, err error) {
	if children, err = q.children(ctx); err == nil || !core.IsTransient(err) {
		return children, err
	}
	err = q.Sess.Retry(ctx, func(ctx context.Context) (err error) {
		children, err = q.children(ctx)
		return err
	})
	return children, err
}

// children lists the parent; a missing parent is an empty queue.
func (q *Queue) children(ctx context.Context) ([]string, error) {
	ch, err := q.Sess.Children(ctx, q.Dir)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	return ch, err
}

// List returns the contenders in queue order.
func (q *Queue) List(ctx context.Context) ([]Node, error) {
	children, err := q.children(ctx)
	if err != nil {
		return nil, q.wrap("list", err)
	}
	return Sorted(children, q.Kinds), nil
}

// NewQueue checks a recipe's session and path and returns the queue at
// path (relative to the session's chroot) with acl, or the session's ACL
// when acl is nil. sess is a *recipes.Session (or a core.Session). Errors
// are prefixed with the recipe's package name.
func NewQueue(pkg string, s any, path string, kinds []string, acl []zk.ACL) (*Queue, error) {
	sess := core.Of(s)
	if sess.Session == nil {
		return nil, fmt.Errorf("%s: %w", pkg, core.ErrNilSession)
	}
	if err := core.ValidatePath(path); err != nil {
		return nil, fmt.Errorf("%s: %w", pkg, err)
	}
	if acl == nil {
		acl = sess.ACL()
	}
	return &Queue{Sess: sess, Dir: sess.Path(path), Kinds: kinds, ACL: acl}, nil
}
