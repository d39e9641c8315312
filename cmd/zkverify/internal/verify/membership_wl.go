package verify

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"time"

	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/membership"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// ---- Membership: every worker is a member of <root>/group under its
// worker name.
//
// A join is recorded as an acquisition (invoke, then ok with the member
// node's czxid as the token, kind "p"), the membership as its hold (its
// context ends when the Membership is over: "lost" when the session ended or
// the node was deleted), Release as its release. The ok carries no Node: the
// generic checkers find a hold's node by path, keeping the latest record per
// path, and a member node <group>/<id> is created again on every join;
// checkMemberNodes does their node checks (owner session, Acquire returning a
// deleted node, prompt "lost" after the server deleted it) matching by path
// and czxid instead. The other generic checkers apply as they are:
// prompt-loss for a member cut off past the session timeout, orphans (a
// member node exists only while its worker is joining or a member, and the
// group is empty once the workers exited), liveness (Acquire and Release return by
// their deadlines; a join within Bounds.Liveness of the final heal).
//
// The worker replaces its session when one ends, which runs this workload
// again: it joins again then. On shutdown it leaves. It also leaves and joins
// again every MembershipHoldMin–Max (churn): without it a calm run has no
// join after the final heal, which the generic liveness checker requires of
// every workload, and churn exercises Acquire/Release and the observer's view.
//
// Grants use Res "<group>/<worker>" (the member node's path): the generic
// token checker compares tokens within one Res, and a worker's successive
// nodes have increasing czxids.
//
// Checks: membership-node (checkMemberNodes, above) and
// membership-converge. The end of the final calm period is taken as HealT +
// Bounds.Liveness: the harness sleeps exactly that long after recording the
// final heal, then stops the workers (History has no event for it). There,
// from the observer's node records of the group:
//   - every live worker's latest membership of its latest session granted
//     after the heal is backed by exactly one node <group>/<worker>, owned by
//     that session, with the grant's czxid: checked at the end of the calm
//     if it is still held and was granted at least Slack before (so the
//     observer has seen it), else just before its Release if it lasted more
//     than Slack (the worker is between a churn Release and Acquire); a worker
//     alive since before the heal with no such membership is a violation;
//   - every worker alive through the calm joined during it;
//   - no node of an older session of a live worker, of a dead worker (dead
//     for more than 2T + 2·Slack), or of an unknown id remains.

const (
	MembershipJoinTimeout = 8 * time.Second // + stat read < AcquireTimeout
	MembershipHoldMin     = 2 * time.Second
	MembershipHoldMax     = 5 * time.Second
)

type membershipWL struct{}

func init() { Workloads["membership"] = membershipWL{} }

func (membershipWL) Name() string               { return "membership" }
func (membershipWL) Paths(root string) []string { return []string{path.Join(root, "group")} }

func (membershipWL) Run(ctx context.Context, e *Env) error {
	grp := path.Join(e.Root, "group")
	g := membership.NewGroup(e.Sess, grp)
	id := e.w.cfg.Name
	res := path.Join(grp, id)
	full := e.Sess.Path(res)
	for ctx.Err() == nil {
		op := e.Invoke("membership", res, "p")
		jctx, cancel := context.WithTimeout(ctx, MembershipJoinTimeout)
		m, err := g.Acquire(jctx, id, []byte(id))
		cancel()
		if err != nil {
			e.Fail(op, "membership", res, err)
			if !e.afterFail(ctx, err) {
				return nil
			}
			continue
		}
		// The token: the member node's czxid (and check its owner).
		var czxid int64
		for i := 0; i < 10; i++ {
			_, st, err2 := e.Sess.Conn().Exists(full)
			if err2 == nil && st != nil && st.Czxid != 0 {
				if st.EphemeralOwner != e.Sess.ID() {
					err = fmt.Errorf("member node owned by session %#x, not ours %#x", st.EphemeralOwner, e.Sess.ID())
				}
				czxid = st.Czxid
				break
			}
			if m.Err() != nil || !sleepCtx(ctx, 200*time.Millisecond) {
				break
			}
		}
		if czxid == 0 || err != nil {
			// Not recorded as a grant (no token): leave, then record the op
			// as failed, so its window covers the node's whole life.
			lctx, lcancel := context.WithTimeout(context.Background(), 3*time.Second)
			lerr := m.Release(lctx)
			lcancel()
			if err == nil {
				err = fmt.Errorf("joined but could not read the member node's stat (membership: %v, leave: %v)", m.Err(), lerr)
			}
			e.Fail(op, "membership", res, err)
			if !e.afterFail(ctx, err) {
				return nil
			}
			continue
		}
		// The hold's context ends when the membership does; leaving is a release.
		lctx, lcancel := context.WithCancelCause(context.Background())
		go func() {
			<-m.Done()
			if errors.Is(m.Err(), membership.ErrReleased) {
				lcancel(lock.ErrReleased) // Granted reports no "lost" for a release
			} else {
				lcancel(m.Err())
			}
		}()
		h := e.Granted(op, "membership", "p", lctx, Member{Res: res, Tok: recipes.Token(czxid)})
		h.Idle(lctx, ctx, e.between(MembershipHoldMin, MembershipHoldMax))
		h.Release(m.Release)
		sleepCtx(ctx, e.between(0, 200*time.Millisecond))
	}
	return nil
}

func (membershipWL) Check(h *History) []Violation {
	if h.HealT == 0 {
		return nil
	}
	var grp string
	for p, wl := range h.parentWL {
		if wl == "membership" {
			grp = p
		}
	}
	calmEnd := h.HealT + int64(h.Bounds.Liveness)
	if calmEnd > h.End {
		calmEnd = h.End
	}
	slack := int64(h.Bounds.Slack)
	grace := 2*int64(h.Bounds.SessionTimeout) + 2*slack

	// Workers alive at calmEnd, their start and latest session.
	started := map[string]int64{}
	dead := map[string]int64{}
	latest := map[string]Event{} // worker -> its last session event before calmEnd
	type mop struct {
		ok, end int64 // end: lost or rel_invoke, 0: none before calmEnd
		sess    int64
		tok     int64
	}
	ops := map[string][]*mop{}       // worker -> its joins granted before calmEnd
	var lastInv = map[string]int64{} // worker -> its last join invoked before calmEnd
	var okInCalm = map[string]bool{} // worker joined in [HealT, calmEnd]
	var ends = map[string]int64{}    // worker -> when its last session ended (session_end)
	byOp := map[string]*mop{}
	for _, e := range h.Events {
		if e.T > calmEnd {
			break
		}
		switch e.Type {
		case EvWorkerStart:
			started[e.Note] = e.T
		case EvWorkerKill, EvWorkerExit:
			if dead[e.Note] == 0 {
				dead[e.Note] = e.T
			}
		case EvSession:
			latest[e.Src] = e
		case EvSessionEnd:
			ends[e.Src] = e.T
		}
		if e.WL != "membership" {
			continue
		}
		k := opKey(e.Src, e.Op)
		switch e.Type {
		case EvInvoke:
			lastInv[e.Src] = e.T
		case EvOK:
			o := &mop{ok: e.T, sess: e.Sess, tok: e.Tok}
			byOp[k] = o
			ops[e.Src] = append(ops[e.Src], o)
			if e.T >= h.HealT {
				okInCalm[e.Src] = true
			}
		case EvLost, EvRelInvoke:
			if o := byOp[k]; o != nil && o.end == 0 {
				o.end = e.T
			}
		}
	}
	v := h.checkMemberNodes(grp)
	// The group's nodes alive at calmEnd, by id.
	alive := map[string][]*NodeRec{}
	for _, n := range h.nodeList {
		if n.Parent == grp && n.Add <= calmEnd && (n.Del == 0 || n.Del > calmEnd) {
			id := path.Base(n.Node)
			alive[id] = append(alive[id], n)
		}
	}
	var live []string
	for w, t := range started {
		if dead[w] == 0 && t < calmEnd {
			live = append(live, w)
		}
	}
	sort.Strings(live)
	isLive := map[string]bool{}
	for _, w := range live {
		isLive[w] = true
		sess, ok := latest[w]
		if !ok {
			v = append(v, Violation{"membership-converge", calmEnd, fmt.Sprintf("%s had no session at the end of the calm period", w)})
			continue
		}
		if started[w] < h.HealT && !okInCalm[w] {
			v = append(v, Violation{"membership-converge", calmEnd, fmt.Sprintf("%s did not join %s during the final calm (%v after the heal; last join invoked %s)",
				w, grp, h.Bounds.Liveness, fmtT(lastInv[w]))})
		}
		// The worker's latest membership of its latest session, granted after
		// the heal, that the observer must have seen: one still held at
		// calmEnd and granted at least Slack before (checked at calmEnd), or
		// one that lasted more than Slack (checked just before its Release, if
		// the worker is between a Release and a Acquire at calmEnd, as churn
		// makes it from time to time).
		var o *mop
		at := calmEnd
		for i := len(ops[w]) - 1; i >= 0; i-- {
			x := ops[w][i]
			if x.sess != sess.Sess || x.ok < h.HealT {
				break
			}
			if x.end == 0 && x.ok <= calmEnd-slack {
				o = x
				break
			}
			if x.end != 0 && x.end-x.ok > slack {
				o, at = x, x.end-1
				break
			}
		}
		if o != nil {
			var ns []*NodeRec
			for _, n := range h.nodeList {
				if n.Parent == grp && path.Base(n.Node) == w && n.Add <= at && (n.Del == 0 || n.Del > at) {
					ns = append(ns, n)
				}
			}
			if len(ns) != 1 || ns[0].Owner != sess.Sess || ns[0].Czxid != o.tok {
				v = append(v, Violation{"membership-converge", at, fmt.Sprintf("%s, a member since %s with session %#x (node czxid %#x), had %d node(s) in %s at %s: %v",
					w, fmtT(o.ok), sess.Sess, o.tok, len(ns), grp, fmtT(at), nodeRecs(ns))})
			}
		} else if started[w] < h.HealT {
			v = append(v, Violation{"membership-converge", calmEnd, fmt.Sprintf("%s has no membership of its latest session %#x since the heal long enough to check", w, sess.Sess)})
		}
		// Whatever it is doing at calmEnd, no node of an older session of it.
		for _, n := range alive[w] {
			if n.Owner != sess.Sess && (ends[w] == 0 || ends[w] < calmEnd-grace) {
				v = append(v, Violation{"membership-converge", calmEnd, fmt.Sprintf("%s still has node %s owned by session %#x, not its latest %#x",
					w, n.Node, n.Owner, sess.Sess)})
			}
		}
	}
	for id, ns := range alive {
		if isLive[id] {
			continue
		}
		for _, n := range ns {
			why := "no worker of that name"
			if d := dead[id]; d != 0 {
				if d > calmEnd-grace {
					continue // died just now: its session may not have expired yet
				}
				why = "its worker died at " + fmtT(d)
			}
			v = append(v, Violation{"membership-converge", calmEnd, fmt.Sprintf("node %s (session %#x) still in the group at the end of the calm period: %s",
				n.Node, n.Owner, why)})
		}
	}
	return v
}

// checkMemberNodes does for member nodes what the generic tokens,
// stale-grant and prompt-loss checkers do for contender nodes. Those find a
// hold's node by path (h.nodes keeps the latest record per path), which is
// right for sequential contender nodes but not for a member node
// <group>/<id> that a worker creates again on every join: so membership
// grants carry no Node, and this matches each grant to the observer's record
// of its node by path and czxid (the grant's token) instead.
func (h *History) checkMemberNodes(grp string) []Violation {
	var v []Violation
	slack := int64(h.Bounds.Slack)
	recs := map[string]*NodeRec{} // node|czxid
	for _, n := range h.nodeList {
		if n.Parent == grp {
			recs[fmt.Sprintf("%s|%d", n.Node, n.Czxid)] = n
		}
	}
	for _, hr := range h.holds {
		if hr.WL != "membership" {
			continue
		}
		n := recs[fmt.Sprintf("%s|%d", path.Join(grp, hr.W), hr.Tok)]
		if n == nil {
			continue // not seen by the observer (short-lived, or a stat of the wrong node: then no node has that czxid)
		}
		if n.Owner != hr.Sess {
			v = append(v, Violation{"membership-node", hr.Grant, fmt.Sprintf("%s op %d: node %s czxid %#x owned by session %#x, not the member's %#x", hr.W, hr.Op, n.Node, n.Czxid, n.Owner, hr.Sess)})
		}
		if n.Del == 0 {
			continue
		}
		d := n.Del
		if d < hr.Grant && !h.frozenIn(hr.W, d, hr.Grant) {
			v = append(v, Violation{"membership-node", hr.Grant, fmt.Sprintf("%s op %d: Acquire returned %v after the server deleted the member node %s czxid %#x",
				hr.W, hr.Op, time.Duration(hr.Grant-d).Round(time.Millisecond), n.Node, n.Czxid)})
			continue
		}
		if told, late := h.toldLate(hr, d, slack); late {
			v = append(v, Violation{"membership-node", d, fmt.Sprintf("%s op %d (session %#x, node %s czxid %#x): member node deleted by the server but the member was told %s",
				hr.W, hr.Op, hr.Sess, n.Node, n.Czxid, fmtT(told))})
		}
	}
	return v
}

func nodeRecs(ns []*NodeRec) []string {
	var out []string
	for _, n := range ns {
		out = append(out, fmt.Sprintf("%s (owner %#x, czxid %#x)", path.Base(n.Node), n.Owner, n.Czxid))
	}
	return out
}
