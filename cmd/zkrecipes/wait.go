package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/election"
	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// What zkrecipes lock and elect store on their node: "host:pid", followed
// by ";"-separated flags. "zkrecipes revoke" asks only holders that carry
// flagRevocable, as only they notice.
const (
	flagRevocable = "revocable" // lock --revocable: honours revoke
	flagRevoked   = "revoked"   // a revocation arrived; releasing
)

// nodeData is the data of our contender node.
func nodeData(flags ...string) []byte {
	return []byte(strings.Join(append([]string{identity()}, flags...), ";"))
}

// parseNodeData splits a contender's data into the "host:pid" identity
// and the flags; data that is not ours is all identity.
func parseNodeData(data []byte) (id string, flags []string) {
	parts := strings.Split(string(data), ";")
	return parts[0], parts[1:]
}

func hasFlag(data []byte, flag string) bool {
	_, flags := parseNodeData(data)
	for _, f := range flags {
		if f == flag {
			return true
		}
	}
	return false
}

// queued is one contender as the wait progress sees it.
type queued struct {
	data    []byte
	session int64
	token   int64
}

type listFunc func(ctx context.Context) ([]queued, error)

func mutexQueue(m *lock.Mutex) listFunc {
	return func(ctx context.Context) ([]queued, error) {
		cs, err := m.Contenders(ctx)
		out := make([]queued, len(cs))
		for i, c := range cs {
			out[i] = queued{data: c.Data, session: c.Session, token: int64(c.Token)}
		}
		return out, err
	}
}

func electionQueue(e *election.Election) listFunc {
	return func(ctx context.Context) ([]queued, error) {
		ps, err := e.Participants(ctx)
		out := make([]queued, len(ps))
		for i, p := range ps {
			out[i] = queued{data: p.Value, session: p.Session, token: int64(p.Token)}
		}
		return out, err
	}
}

// queueView is the queue ahead of us.
type queueView struct {
	holder string // the first contender's data, if someone is ahead
	token  int64  // its token
	ahead  int    // contenders ahead of our node (all of them before we joined)
}

func viewOf(cs []queued, me int64) queueView {
	ahead := len(cs)
	for i, c := range cs {
		if c.session == me {
			ahead = i
			break
		}
	}
	if ahead == 0 {
		return queueView{}
	}
	id, _ := parseNodeData(cs[0].data)
	return queueView{holder: id, token: cs[0].token, ahead: ahead}
}

// watchQueue calls show with the queue ahead of us at first and on every
// change (a child of path created or deleted), until ctx or the session
// ends. Errors are retried: this is only for display.
func watchQueue(ctx context.Context, sess *recipes.Session, path string, list listFunc, show func(queueView)) {
	me := sess.ID()
	full := sess.Path(path)
	first := true
	var last queueView
	for {
		w, werr := core.WatchOf(core.Of(sess).ChildrenW(ctx, full))
		if errors.Is(werr, zk.ErrNoNode) {
			w, werr = core.WatchOf(core.Of(sess).ExistsW(ctx, full))
		}
		cs, err := list(ctx)
		if err == nil {
			if v := viewOf(cs, me); first || v != last {
				first, last = false, v
				show(v)
			}
		}
		var retry <-chan time.Time
		if werr != nil || err != nil {
			t := time.NewTimer(time.Second)
			defer t.Stop()
			retry = t.C
		}
		select {
		case <-ctx.Done():
			return
		case <-sess.Done():
			return
		case <-w:
		case <-retry:
		}
	}
}

// errBusy cancels an elect --try campaign that found a leader.
var errBusy = errors.New("held by someone else")

// whileWaiting runs wait (an acquire or a campaign) and, if show is not
// nil, a watchQueue that reports the queue to show meanwhile; show returns
// true to abort the wait (its context is cancelled with errBusy).
func whileWaiting[T any](ctx context.Context, sess *recipes.Session, path string, list listFunc, show func(queueView) bool, wait func(context.Context) (T, error)) (T, error) {
	if show == nil {
		return wait(ctx)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		watchQueue(wctx, sess, path, list, func(v queueView) {
			if show(v) {
				cancel(errBusy)
			}
		})
	}()
	v, err := wait(wctx)
	cancel(nil)
	<-wdone
	if err != nil && errors.Is(context.Cause(wctx), errBusy) && ctx.Err() == nil {
		err = errBusy
	}
	return v, err
}

// progress prints what a lock or elect waits for, on a terminal or with -v.
type progress struct {
	w      io.Writer
	what   string // "lock /a", "leadership of /a"
	holds  string // "held by", "led by"
	start  time.Time
	waited bool // a waiting line was printed
}

func newProgress(co *commonOpts, stderr io.Writer, what, holds string) *progress {
	if co.verbose == 0 && !isTerminal(os.Stderr) {
		return nil
	}
	return &progress{w: stderr, what: what, holds: holds, start: time.Now()}
}

// show prints the queue ahead of us when someone is.
func (p *progress) show(v queueView) {
	if p == nil || v.ahead == 0 {
		return
	}
	p.waited = true
	fmt.Fprintf(p.w, "zkrecipes: waiting for %s, %s %s (token %d), %d ahead\n", p.what, p.holds, v.holder, v.token, v.ahead)
}

// granted prints how long we waited, if we said we were waiting.
func (p *progress) granted(verb string, token fmt.Stringer) {
	if p == nil || !p.waited {
		return
	}
	fmt.Fprintf(p.w, "zkrecipes: %s %s after %v (token %v)\n", verb, p.what, time.Since(p.start).Round(time.Millisecond), token)
}
