package fence

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// ZooKeeper is a Checker that keeps the highest token of each resource in a
// persistent znode under a base path: base + "/" + the escaped resource name
// (see ZooKeeper.Path), whose data is the token in decimal. It suits
// resources that cannot keep the token themselves but whose writers can
// reach ZooKeeper. It is safe for concurrent use, also by many processes
// sharing the base path.
//
// Accept is a compare-and-set loop: it reads the node; if tok is older than
// the stored token it rejects; otherwise it writes tok with the version it
// read (setData with a version check) and retries from the read if another
// writer changed the node meanwhile. A missing node is created (its parents
// too, as persistent nodes); if another writer created it first, the loop
// retries. Every accepted call ends with a versioned write, which the
// ZooKeeper leader orders, so an Accept is linearizable even when reads are
// served by a lagging follower (the versioned write of a stale read fails
// and is retried). A rejection rests on a read, which is safe because the
// stored token never decreases. So do not delete or lower the nodes by hand
// while holders are alive.
//
// Every ZooKeeper call returns early when ctx is done or the session is
// over, and is retried across connection losses. An Accept that returns such an error may still
// take effect later (a write already sent is not taken back); that only
// records the token, which is safe.
type ZooKeeper struct {
	src  recipes.Source
	base string
	acl  []zk.ACL
	err  error // a bad argument to NewZooKeeper, returned by every method

	onAccept   func(resource string, version int32, tok recipes.Token) // tests
	onConflict func()                                                  // tests: a compare-and-set lost a race
}

var _ Checker = (*ZooKeeper)(nil)

// NewZooKeeper returns a checker keeping its nodes under base (a path
// relative to the session's chroot, validated by recipes.ValidatePath) on
// src: a *recipes.Session, or a *recipes.Client (each call then uses the
// Client's live session: the nodes are persistent and outlive sessions).
// Nothing is created until the first Accept. Bad arguments are reported by
// its methods, like a recipe's.
func NewZooKeeper(src recipes.Source, base string, opts ...Option) *ZooKeeper {
	z := &ZooKeeper{src: src, base: base}
	var o options
	z.err = core.Setup("fence", &o, opts, recipes.CheckSource(src), base)
	z.acl = o.acl
	return z
}

// live returns a live session of the source, or the construction error.
func (z *ZooKeeper) live(ctx context.Context) (*recipes.Session, error) {
	if err := core.Check(ctx, z.err, "fence", "checker", z.base); err != nil {
		return nil, err
	}
	return z.src.Live(ctx)
}

// Path returns the znode that holds resource's highest token, relative to
// the session's chroot. The resource name is escaped into one path segment:
// ASCII letters, digits, '-', '_' and '.' (except a leading '.') are kept,
// every other byte becomes %XX.
func (z *ZooKeeper) Path(resource string) string {
	return z.base + "/" + escapeNode(resource)
}

func escapeNode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Accept implements Checker (see the type's documentation for how).
func (z *ZooKeeper) Accept(ctx context.Context, resource string, tok recipes.Token) error {
	return z.acceptWith(ctx, resource, tok, nil)
}

// AcceptHeld is Accept for a writer that holds holder, done by the writer
// itself before it writes (the checker's session need not be holder's). It
// refuses a holder that is no longer held: it calls holder.Err before it
// starts and right before every write that would record the token (the
// versioned set, or the create of the node), including those retried after
// a conflict or a connection loss. If the holder is not held it records
// nothing more and returns a *NotHeldError wrapping ErrNotHeld and holder's
// Err (so errors.Is(err, lock.ErrLost) holds for a lost lock.Lease); a
// write already sent before the holder's loss was noticed may still have
// recorded the token, which is safe.
func (z *ZooKeeper) AcceptHeld(ctx context.Context, resource string, holder Holder) error {
	if _, err := held(resource, holder); err != nil {
		return err
	}
	return z.acceptWith(ctx, resource, holder.Token(), func() error {
		_, err := held(resource, holder)
		return err
	})
}

func (z *ZooKeeper) acceptWith(ctx context.Context, resource string, tok recipes.Token, check func() error) error {
	if err := checkArgs(resource, tok); err != nil {
		return err
	}
	if check == nil {
		check = func() error { return nil }
	}
	sess, err := z.live(ctx)
	if err != nil {
		return err
	}
	full := sess.Path(z.Path(resource))
	err = core.Of(sess).Retry(ctx, func(ctx context.Context) error {
		return z.accept(ctx, sess, resource, full, tok, check)
	})
	if err != nil && !errors.Is(err, ErrStale) && !errors.Is(err, ErrNotHeld) {
		return fmt.Errorf("fence: accept token %s for %q at %s: %w", tok, resource, full, err)
	}
	return err
}

func (z *ZooKeeper) accept(ctx context.Context, sess *recipes.Session, resource, full string, tok recipes.Token, check func() error) error {
	data := []byte(tok.String())
	for {
		cur, version, err := z.read(ctx, sess, full)
		if errors.Is(err, zk.ErrNoNode) {
			err = z.create(ctx, sess, full, data, check)
			if errors.Is(err, zk.ErrNodeExists) {
				z.conflict()
				continue
			}
			if err == nil && z.onAccept != nil {
				z.onAccept(resource, 0, tok)
			}
			return err
		}
		if err != nil {
			return err
		}
		if tok < cur {
			return stale(resource, tok, cur)
		}
		if err := check(); err != nil {
			return err
		}
		st, err := core.Of(sess).Set(ctx, full, data, version)
		if errors.Is(err, zk.ErrBadVersion) || errors.Is(err, zk.ErrNoNode) {
			z.conflict()
			continue // changed (or deleted) since we read it
		}
		if err != nil {
			return err
		}
		if z.onAccept != nil {
			z.onAccept(resource, st.Version, tok)
		}
		return nil
	}
}

func (z *ZooKeeper) conflict() {
	if z.onConflict != nil {
		z.onConflict()
	}
}

// read returns the token stored at full and the node's version.
func (z *ZooKeeper) read(ctx context.Context, sess *recipes.Session, full string) (recipes.Token, int32, error) {
	g, err := core.Of(sess).Get(ctx, full)
	if err != nil {
		return 0, 0, err
	}
	tok, err := recipes.ParseToken(string(g.Data))
	if err != nil {
		return 0, 0, fmt.Errorf("node %s does not hold a fencing token: %w", full, err)
	}
	return tok, g.Stat.Version, nil
}

// create creates full with data as a persistent node, and its missing
// parents (without data). check runs right before each create of full.
func (z *ZooKeeper) create(ctx context.Context, sess *recipes.Session, full string, data []byte, check func() error) error {
	c := core.Of(sess)
	return c.CreatePath(ctx, full, data, zk.FlagPersistent, zk.FlagPersistent, core.ACLOr(z.acl, c), check)
}

// Highest implements Checker. It syncs the server it reads from with the
// leader first, so it sees every Accept that returned before it was called.
func (z *ZooKeeper) Highest(ctx context.Context, resource string) (recipes.Token, error) {
	if resource == "" {
		return 0, checkArgs(resource, 1)
	}
	sess, err := z.live(ctx)
	if err != nil {
		return 0, err
	}
	full := sess.Path(z.Path(resource))
	var tok recipes.Token
	err = core.Of(sess).Retry(ctx, func(ctx context.Context) error {
		err := core.Of(sess).Sync(ctx, full)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
		tok, _, err = z.read(ctx, sess, full)
		if errors.Is(err, zk.ErrNoNode) {
			tok, err = 0, nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("fence: highest token for %q at %s: %w", resource, full, err)
	}
	return tok, nil
}
