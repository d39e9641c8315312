package verify

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// Violation is one broken invariant.
type Violation struct {
	Check string `json:"check"`
	T     int64  `json:"t"`
	Msg   string `json:"msg"`
}

func (v Violation) String() string {
	return fmt.Sprintf("[%s] %s: %s", v.Check, wallTime(v.T).Format("15:04:05.000"), v.Msg)
}

// HoldRec is one granted lock (one member of an acquisition) as the
// history tells it.
type HoldRec struct {
	W, WL, Res, Kind, Node string
	Op, Tok, Sess          int64
	Invoke, Grant          int64
	ActEnd, LastWrite      int64 // last fenced write (or accepted read), as the fence received it
	Lost, RelInvoke        int64
	RelDone                int64
	LostErr                string
}

func (h *HoldRec) String() string {
	if h == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s op %d %s %s tok %#x node %s", h.W, h.Op, h.WL, h.Kind, h.Tok, path.Base(h.Node))
}

// NodeRec is a contender node as the observer saw it.
type NodeRec struct {
	Node, Parent string
	Owner, Czxid int64
	Add, Del     int64 // Del 0: still there at the end
}

type span struct{ from, to int64 } // to 0: open

// Bounds are the timing tolerances of the checkers.
type Bounds struct {
	SessionTimeout time.Duration
	Slack          time.Duration // scheduling, observer polling, JVM pauses
	Liveness       time.Duration // after the final heal, every workload grants within this
}

// History is the whole run, indexed for the checkers.
type History struct {
	Events    []Event
	Bounds    Bounds
	Workloads []Workload
	HealT     int64 // final heal: the ensemble and all workers healthy from here on
	End       int64

	holds    []*HoldRec
	nodes    map[string]*NodeRec
	nodeList []*NodeRec
	// Resurrected lists nodes the server showed again, with their old
	// czxid, after their deletion had been seen.
	Resurrected []string
	invokes     map[string]Event // worker/op -> invoke
	results     map[string]int64 // worker/op -> ok or fail time
	frozen      map[string][]span
	killed      map[string]int64
	expired     map[string][]span // worker → [expiry requested, server confirmed it ended the session]
	parts       map[string][]span
	blind       map[string][]span // observer's blind spells, by parent
	sessions    map[int64]string
	fence       []Event
	parentWL    map[string]string
	opEnds      map[string]int64 // worker/op -> when the op was over (fail, rel_done, lost)

	regOnce sync.Once
	regRes  []RegisterResult
}

func opKey(w string, op int64) string { return fmt.Sprintf("%s/%d", w, op) }

// NewHistory indexes events (which must be in recording order per source).
func NewHistory(events []Event, b Bounds, wls []Workload, root string, healT, end int64) *History {
	h := &History{Events: events, Bounds: b, Workloads: wls, HealT: healT, End: end,
		nodes: map[string]*NodeRec{}, invokes: map[string]Event{}, results: map[string]int64{},
		frozen: map[string][]span{}, killed: map[string]int64{}, expired: map[string][]span{}, parts: map[string][]span{}, blind: map[string][]span{},
		sessions: map[int64]string{}, parentWL: map[string]string{}, opEnds: map[string]int64{}}
	for _, wl := range wls {
		for _, p := range wl.Paths(root) {
			h.parentWL[p] = wl.Name()
		}
	}
	sort.SliceStable(h.Events, func(i, j int) bool { return h.Events[i].T < h.Events[j].T })
	holds := map[string]*HoldRec{}
	get := func(e Event) *HoldRec { return holds[opKey(e.Src, e.Op)+"|"+e.Res] }
	for _, e := range h.Events {
		k := opKey(e.Src, e.Op)
		switch e.Type {
		case EvSession:
			h.sessions[e.Sess] = e.Src
		case EvInvoke:
			h.invokes[k] = e
		case EvFail:
			h.results[k] = e.T
			h.opEnds[k] = e.T
		case EvOK:
			h.results[k] = e.T
			hr := &HoldRec{W: e.Src, WL: e.WL, Res: e.Res, Kind: e.Kind, Node: e.Node, Op: e.Op, Tok: e.Tok, Sess: e.Sess,
				Invoke: h.invokes[k].T, Grant: e.T}
			holds[k+"|"+e.Res] = hr
			h.holds = append(h.holds, hr)
		case EvActEnd:
			if hr := get(e); hr != nil && hr.ActEnd == 0 {
				hr.ActEnd = e.T
			}
		case EvLost:
			if hr := get(e); hr != nil && hr.Lost == 0 {
				hr.Lost, hr.LostErr = e.T, e.Err
				if h.opEnds[k] == 0 {
					h.opEnds[k] = e.T
				}
			}
		case EvRelInvoke:
			if hr := get(e); hr != nil {
				hr.RelInvoke = e.T
			}
		case EvRelDone:
			if hr := get(e); hr != nil {
				hr.RelDone = e.T
			}
			h.opEnds[k] = e.T
		case EvFenceRead:
			if hr := holds[opKey(e.Note, e.Op)+"|"+e.Res]; hr != nil && e.Acc && e.T > hr.LastWrite {
				hr.LastWrite = e.T // acting: an accepted read counts like a write
			}
		case EvFenceWrite:
			h.fence = append(h.fence, e)
			if hr := holds[opKey(e.Note, e.Op)+"|"+e.Res]; hr != nil && e.T > hr.LastWrite {
				hr.LastWrite = e.T
			}
		case EvNodeAdd:
			if prev := h.nodes[e.Node]; prev != nil && prev.Del != 0 && prev.Czxid == e.Tok {
				// The same node (same czxid) shown again after its deletion
				// was seen: a server that rejoined the ensemble with a stale
				// tree (ZooKeeper logs "Unexpected extra paths under
				// session"). No client can create a node with an old czxid,
				// so this is the ensemble's inconsistency, not the library's.
				h.Resurrected = append(h.Resurrected, e.Node)
				continue
			}
			n := &NodeRec{Node: e.Node, Parent: e.Res, Owner: e.Sess, Czxid: e.Tok, Add: e.T}
			h.nodes[e.Node] = n
			h.nodeList = append(h.nodeList, n)
		case EvNodeDel:
			if n := h.nodes[e.Node]; n != nil && n.Del == 0 {
				n.Del = e.T
			}
		case EvFreeze:
			h.frozen[e.Note] = append(h.frozen[e.Note], span{from: e.T})
		case EvThaw:
			if s := h.frozen[e.Note]; len(s) > 0 {
				s[len(s)-1].to = e.T
			}
		case EvObsBlind:
			h.blind[e.Res] = append(h.blind[e.Res], span{from: e.T})
		case EvObsSeen:
			if s := h.blind[e.Res]; len(s) > 0 && s[len(s)-1].to == 0 {
				s[len(s)-1].to = e.T
			}
		case EvWorkerKill:
			h.killed[e.Note] = e.T
		case EvNemesis:
			if w, ok := strings.CutPrefix(e.Note, "expire-session "); ok {
				h.expired[w] = append(h.expired[w], span{from: e.T})
			}
		case EvExpired:
			if s := h.expired[e.Note]; len(s) > 0 && s[len(s)-1].to == 0 {
				s[len(s)-1].to = e.T
			}
		case EvPartition:
			h.parts[e.Note] = append(h.parts[e.Note], span{from: e.T})
		case EvUnpartition:
			if s := h.parts[e.Note]; len(s) > 0 {
				s[len(s)-1].to = e.T
			}
		}
	}
	return h
}

// expiredIn reports whether the nemesis had the server expire worker w's
// session at some time in [a, b]. Like a frozen holder, such a holder acts
// until it hears of the expiry, which no client can hear of sooner: its
// writes in between are judged by the fence (stale-write), not by
// exclusion.
func (h *History) expiredIn(w string, a, b int64) bool {
	for _, x := range h.expired[w] {
		if x.from >= a && x.from <= b {
			return true
		}
	}
	return false
}

// frozenIn reports whether worker w was stopped at some time in [a, b].
func (h *History) frozenIn(w string, a, b int64) bool {
	for _, s := range h.frozen[w] {
		to := s.to
		if to == 0 {
			to = h.End
		}
		if s.from <= b && to >= a {
			return true
		}
	}
	return false
}

// frozenFor is how long w was stopped within [a, b].
func (h *History) frozenFor(w string, a, b int64) int64 {
	return overlap(h.frozen[w], a, b, h.End)
}

// overlap is how much of [a, b] the spans cover.
func overlap(spans []span, a, b, end int64) int64 {
	var d int64
	for _, s := range spans {
		to := s.to
		if to == 0 {
			to = end
		}
		lo, hi := max(a, s.from), min(b, to)
		if hi > lo {
			d += hi - lo
		}
	}
	return d
}

// thawAfter returns the end of the freeze of w that covers t, or 0.
func (h *History) thawAfter(w string, t int64) int64 {
	for _, s := range h.frozen[w] {
		if s.from <= t && (s.to == 0 || s.to >= t) {
			if s.to == 0 {
				return h.End
			}
			return s.to
		}
	}
	return 0
}

// actEnd is when the holder stopped acting: its own act_end, the last write
// the fence received from it, or its death.
func (h *History) actEnd(hr *HoldRec) int64 {
	e := hr.ActEnd
	if hr.Lost != 0 && (e == 0 || hr.Lost < e) {
		e = hr.Lost // the worker checks the lease's context before acting
	}
	if e == 0 {
		e = h.End
		if k := h.killed[hr.W]; k > hr.Grant && k < e {
			e = k
		}
	}
	// The server deleted the holder's node (its session ended there) and the
	// holder learned of the loss within Slack: no client can learn of a
	// server-side deletion sooner, which is what prompt-loss bounds. For
	// concurrency it stopped holding at the deletion, unless it still acted
	// (a write reached the fence) after it.
	if n := h.nodes[hr.Node]; n != nil && hr.Node != "" && n.Czxid == hr.Tok && n.Del != 0 &&
		n.Del > hr.Grant && n.Del < e && hr.Lost != 0 && hr.Lost <= n.Del+int64(h.Bounds.Slack) {
		e = n.Del
	}
	// The same when the nemesis had the server expire the holder's session
	// and the observer saw the deletion late or not at all: the deletion
	// happened between the request and the server's confirmation, and no
	// conflicting grant can precede it.
	for _, x := range h.expired[hr.W] {
		if x.to != 0 && x.from > hr.Grant && x.from < e && hr.Lost != 0 && hr.Lost <= x.to+int64(h.Bounds.Slack) {
			e = x.from
			break
		}
	}
	return max(e, hr.LastWrite)
}

// Check runs every checker.
func (h *History) Check() []Violation {
	var v []Violation
	v = append(v, h.checkFence()...)
	v = append(v, h.checkTokens()...)
	v = append(v, h.checkStaleGrant()...)
	v = append(v, h.checkConcurrency("", exclusion)...)
	v = append(v, h.checkPromptLoss()...)
	v = append(v, h.checkOrphans()...)
	v = append(v, h.checkLiveness()...)
	v = append(v, h.checkRegisters()...)
	v = append(v, h.checkLate()...)
	v = append(v, h.checkClocks()...)
	for _, wl := range h.Workloads {
		v = append(v, wl.Check(h)...)
	}
	sort.SliceStable(v, func(i, j int) bool { return v[i].T < v[j].T })
	return v
}

// checkFence: accepted tokens never go backwards per resource, and every
// accepted write comes from a granted holder with that token.
func (h *History) checkFence() []Violation {
	var v []Violation
	hi := map[string]int64{}
	byOp := map[string]*HoldRec{}
	for _, hr := range h.holds {
		byOp[opKey(hr.W, hr.Op)+"|"+hr.Res] = hr
	}
	for _, e := range h.fence {
		if !e.Acc {
			continue
		}
		if e.Tok < hi[e.Res] {
			v = append(v, Violation{"stale-write", e.T, fmt.Sprintf("%s accepted token %#x from %s after %#x", e.Res, e.Tok, e.Note, hi[e.Res])})
		}
		hi[e.Res] = max(hi[e.Res], e.Tok)
		if hr := byOp[opKey(e.Note, e.Op)+"|"+e.Res]; hr == nil || hr.Tok != e.Tok {
			v = append(v, Violation{"stale-write", e.T, fmt.Sprintf("%s accepted a write from %s op %d with no matching grant", e.Res, e.Note, e.Op)})
		}
	}
	return v
}

// clockSlack is how far apart two processes' stamps may be: each reads
// the boot clock through Go's monotonic clock and an offset measured to
// within microseconds (internal/clock).
const clockSlack = 200 * time.Microsecond

// checkClocks: every process stamps events with the same clock, so the
// fence records a fenced request between the worker's send and its reply
// (EvWrite, EvRead: T and Dur). A fence record outside that span means a
// worker's clock runs ahead of (or behind) the fence's, and the checks
// that compare stamps of different processes (exclusion above all) cannot
// be trusted: a skew of a few milliseconds shows up as holds that
// overlap by as much. One violation per worker, with the largest skew.
func (h *History) checkClocks() []Violation {
	type key struct {
		w, res, typ string
		op, tok     int64
	}
	sent := map[key][]Event{}
	for _, e := range h.Events {
		if (e.Type == EvWrite || e.Type == EvRead) && e.Err == "" {
			k := key{e.Src, e.Res, e.Type, e.Op, e.Tok}
			sent[k] = append(sent[k], e)
		}
	}
	recorded := map[key][]Event{}
	for _, e := range h.Events {
		var typ string
		switch e.Type {
		case EvFenceWrite:
			typ = EvWrite
		case EvFenceRead:
			typ = EvRead
		default:
			continue
		}
		k := key{e.Note, e.Res, typ, e.Op, e.Tok}
		recorded[k] = append(recorded[k], e)
	}
	worst := map[string]Violation{}
	skews := map[string]time.Duration{}
	for k, ws := range sent {
		fs := recorded[k]
		if len(fs) != len(ws) {
			continue // a request failed after reaching the fence: pairs unknown
		}
		for i, w := range ws {
			f := fs[i]
			var skew time.Duration
			var how string
			switch {
			case f.T < w.T-int64(clockSlack):
				skew, how = time.Duration(w.T-f.T), "ahead of"
			case w.Dur > 0 && f.T > w.T+w.Dur+int64(clockSlack):
				skew, how = time.Duration(f.T-w.T-w.Dur), "behind"
			default:
				continue
			}
			if skew > skews[k.w] {
				skews[k.w] = skew
				worst[k.w] = Violation{"clock", w.T, fmt.Sprintf("%s's clock runs at least %v %s the fence's: the fence recorded its %s of op %d on %s at %s, outside the span from its send (%s) to its reply; checks comparing stamps of different processes are unreliable",
					k.w, skew.Round(10*time.Microsecond), how, k.typ, k.op, k.res,
					wallTime(f.T).Format("15:04:05.000000"), wallTime(w.T).Format("15:04:05.000000"))}
			}
		}
	}
	var v []Violation
	for _, x := range worst {
		v = append(v, x)
	}
	return v
}

// lateCounts counts the workers' fenced writes and reads, and those decided
// after the writer's own local deadline had passed (Event.Late).
func (h *History) lateCounts() (writes, lateWrites, reads, lateReads int) {
	for _, e := range h.Events {
		switch e.Type {
		case EvWrite:
			writes++
			if e.Late > 0 {
				lateWrites++
			}
		case EvRead:
			reads++
			if e.Late > 0 {
				lateReads++
			}
		}
	}
	return
}

// checkLate: no fenced write (or read) is decided after the writer's own
// local deadline (recipes.Session.Deadline) had passed. Past it the session
// counts as lost locally, so the lease check right before sending must
// refuse; a request decided later rests on a lease the library should have
// reported lost (the fence may still reject it, but only if a newer holder
// wrote first).
func (h *History) checkLate() []Violation {
	var v []Violation
	for _, e := range h.Events {
		if e.Late <= 0 || (e.Type != EvWrite && e.Type != EvRead) {
			continue
		}
		what := "write"
		if e.Type == EvRead {
			what = "read"
		}
		v = append(v, Violation{"late-write", e.T, fmt.Sprintf("%s op %d %s %s with token %#x decided %v after the writer's own session deadline (accepted %v)",
			e.Src, e.Op, what, e.Res, e.Tok, time.Duration(e.Late).Round(time.Microsecond), e.Acc)})
	}
	return v
}

func exclusive(kind string) bool { return kind == "x" || kind == "w" || kind == "l" }

// checkTokens: tokens are the node's czxid, unique per lock for exclusive
// holds, and a grant that completed before another acquisition began has a
// smaller token.
func (h *History) checkTokens() []Violation {
	var v []Violation
	byRes := map[string][]*HoldRec{}
	for _, hr := range h.holds {
		byRes[hr.Res] = append(byRes[hr.Res], hr)
		if n := h.nodes[hr.Node]; n != nil && n.Czxid != hr.Tok {
			v = append(v, Violation{"tokens", hr.Grant, fmt.Sprintf("%s: token is not the node's czxid %#x", hr, n.Czxid)})
		}
		if n := h.nodes[hr.Node]; n != nil && n.Owner != hr.Sess {
			v = append(v, Violation{"tokens", hr.Grant, fmt.Sprintf("%s: node owned by session %#x, not the holder's %#x", hr, n.Owner, hr.Sess)})
		}
	}
	for res, hs := range byRes {
		seen := map[int64]*HoldRec{}
		for _, hr := range hs {
			if !exclusive(hr.Kind) {
				continue
			}
			if o := seen[hr.Tok]; o != nil {
				v = append(v, Violation{"tokens", hr.Grant, fmt.Sprintf("%s: token %#x granted twice: %s and %s", res, hr.Tok, o, hr)})
			}
			seen[hr.Tok] = hr
		}
		sort.Slice(hs, func(i, j int) bool { return hs[i].Grant < hs[j].Grant })
		prefMax := make([]*HoldRec, len(hs))
		var m *HoldRec
		for i, hr := range hs {
			if m == nil || hr.Tok > m.Tok {
				m = hr
			}
			prefMax[i] = m
		}
		for _, b := range hs {
			// holds granted strictly before b was invoked
			i := sort.Search(len(hs), func(i int) bool { return hs[i].Grant >= b.Invoke }) - 1
			if i >= 0 && prefMax[i].Tok >= b.Tok && prefMax[i] != b {
				a := prefMax[i]
				v = append(v, Violation{"tokens", b.Grant, fmt.Sprintf("%s: %s was invoked after %s was granted but has a token not larger", res, b, a)})
			}
		}
	}
	return v
}

// exclusion: exclusive holds exclude everything, readers exclude writers.
func exclusion(active []*HoldRec) string {
	for i, a := range active {
		for _, b := range active[i+1:] {
			if a.Kind == "p" || b.Kind == "p" {
				continue
			}
			if exclusive(a.Kind) || exclusive(b.Kind) {
				return fmt.Sprintf("%s and %s act at the same time", a, b)
			}
		}
	}
	return ""
}

// checkConcurrency evaluates limit over the holders acting at each grant,
// per resource (for workload wl, or all when ""). A holder whose worker was
// stopped (SIGSTOP) since its grant is left out: only fencing can stop it,
// and checkFence and checkPromptLoss cover it.
func (h *History) checkConcurrency(wl string, limit func([]*HoldRec) string) []Violation {
	var v []Violation
	byRes := map[string][]*HoldRec{}
	for _, hr := range h.holds {
		if wl == "" || hr.WL == wl {
			byRes[hr.Res] = append(byRes[hr.Res], hr)
		}
	}
	name := "exclusion"
	if wl != "" {
		name = wl
	}
	for res, hs := range byRes {
		for _, b := range hs {
			t := b.Grant
			var active []*HoldRec
			for _, a := range hs {
				if a.Grant <= t && h.actEnd(a) > t && !h.frozenIn(a.W, a.Grant, t) && !h.expiredIn(a.W, a.Grant, t) {
					active = append(active, a)
				}
			}
			if len(active) > 1 {
				if msg := limit(active); msg != "" {
					v = append(v, Violation{name, t, res + ": " + msg})
				}
			}
		}
	}
	return v
}

// toldLate says whether hr, whose node the server deleted at d, learned of
// it (lost, or began releasing: told) later than slack after d, or after
// it resumed if it was stopped then. A release begun before the deletion
// is the deletion's cause; a worker killed by then, or a deadline past the
// end of the history, is not late.
func (h *History) toldLate(hr *HoldRec, d, slack int64) (told int64, late bool) {
	if hr.RelInvoke != 0 && hr.RelInvoke <= d && (hr.Lost == 0 || hr.Lost >= hr.RelInvoke) {
		return 0, false // released: the deletion is the release
	}
	if k := h.killed[hr.W]; k != 0 && k <= d+slack {
		return 0, false
	}
	told = hr.Lost
	if told == 0 || (hr.RelInvoke != 0 && hr.RelInvoke < told) {
		told = hr.RelInvoke
	}
	deadline := d + slack
	if th := h.thawAfter(hr.W, d); th != 0 {
		deadline = th + slack
	}
	if told == 0 && deadline >= h.End {
		return told, false
	}
	return told, told == 0 || told > deadline
}

// checkPromptLoss: a holder whose node the server deleted was told (lost)
// no later than shortly after the observer saw the deletion, or shortly
// after it resumed if it was stopped then; a holder cut off from the
// ensemble is told within the session timeout plus slack.
func (h *History) checkPromptLoss() []Violation {
	var v []Violation
	slack := int64(h.Bounds.Slack)
	for _, hr := range h.holds {
		n := h.nodes[hr.Node]
		if n == nil || n.Del == 0 {
			continue
		}
		d := n.Del
		if told, late := h.toldLate(hr, d, slack); late {
			when := "never"
			if told != 0 {
				when = fmt.Sprintf("%v after the deletion", time.Duration(told-d).Round(time.Millisecond))
			}
			v = append(v, Violation{"prompt-loss", d, fmt.Sprintf("%s: node deleted by the server but the holder was told %s", hr, when)})
		}
	}
	T := int64(h.Bounds.SessionTimeout)
	for w, ps := range h.parts {
		for _, p := range ps {
			to := p.to
			if to == 0 {
				to = h.End
			}
			if to-p.from < T+slack || h.frozenIn(w, p.from, p.from+T+slack) {
				continue
			}
			for _, hr := range h.holds {
				if hr.W != w || hr.Grant >= p.from {
					continue
				}
				told := hr.Lost
				if told == 0 || (hr.RelInvoke != 0 && hr.RelInvoke < told) {
					told = hr.RelInvoke
				}
				if told != 0 && told <= p.from {
					continue
				}
				if told == 0 || told > p.from+T+slack {
					v = append(v, Violation{"prompt-loss", p.from, fmt.Sprintf("%s: cut off from the ensemble for %v, not told within the session timeout (told after %v)",
						hr, time.Duration(to-p.from).Round(time.Millisecond), time.Duration(told-p.from).Round(time.Millisecond))})
				}
			}
		}
	}
	return v
}

// checkOrphans: every contender node belongs to a session some worker
// announced, and exists only while that worker has an acquisition in
// progress or held on that recipe (plus grace for the server to expire a
// session the worker gave up).
func (h *History) checkOrphans() []Violation {
	var v []Violation
	grace := 2*int64(h.Bounds.SessionTimeout) + 2*int64(h.Bounds.Slack)
	type win struct{ from, to int64 }
	wins := map[string][]win{} // worker|workload
	for k, inv := range h.invokes {
		end := h.opEnds[k]
		if end == 0 {
			end = h.End
		}
		if kt := h.killed[inv.Src]; kt > inv.T && kt < end {
			end = kt
		}
		wins[inv.Src+"|"+inv.WL] = append(wins[inv.Src+"|"+inv.WL], win{inv.T, end})
	}
	for _, n := range h.nodeList {
		w, ok := h.sessions[n.Owner]
		if !ok {
			v = append(v, Violation{"orphans", n.Add, fmt.Sprintf("node %s owned by session %#x that no worker announced", n.Node, n.Owner)})
			continue
		}
		wl := h.parentWL[n.Parent]
		del := n.Del
		if del == 0 {
			del = h.End
		}
		covered := false
		for _, x := range wins[w+"|"+wl] {
			// The observer learns of a deletion only when it can read
			// again: its blind spells in between count as grace.
			if x.from <= n.Add && x.to+grace+h.frozenFor(w, x.to, del)+overlap(h.blind[n.Parent], x.to, del, h.End) >= del {
				covered = true
				break
			}
		}
		if !covered {
			v = append(v, Violation{"orphans", n.Add, fmt.Sprintf("node %s of %s (session %#x) lived %v–%v outside any %s acquisition of that worker (+%v grace)",
				n.Node, w, n.Owner, fmtT(n.Add), fmtT(n.Del), wl, time.Duration(grace))})
		}
	}
	return v
}

func fmtT(t int64) string {
	if t == 0 {
		return "end"
	}
	return wallTime(t).Format("15:04:05.000")
}

// checkLiveness: every call returns by its context's deadline (plus slack
// and time spent stopped), and after the final heal every workload grants.
func (h *History) checkLiveness() []Violation {
	var v []Violation
	slack := int64(h.Bounds.Slack)
	for k, inv := range h.invokes {
		bound := inv.T + int64(AcquireTimeout) + 2*slack
		bound += h.frozenFor(inv.Src, inv.T, bound)
		r := h.results[k]
		if kt := h.killed[inv.Src]; kt != 0 && kt > inv.T && (r == 0 || kt < r) {
			continue
		}
		if r == 0 && bound >= h.End {
			continue
		}
		if r == 0 || r > bound {
			v = append(v, Violation{"liveness", inv.T, fmt.Sprintf("%s %s op %d (%s) did not return by its deadline (returned %s)", inv.Src, inv.WL, inv.Op, inv.Kind, fmtT(r))})
		}
	}
	for _, hr := range h.holds {
		if hr.RelInvoke == 0 {
			continue
		}
		bound := hr.RelInvoke + int64(ReleaseTimeout) + 2*slack
		bound += h.frozenFor(hr.W, hr.RelInvoke, bound)
		if kt := h.killed[hr.W]; kt != 0 && kt > hr.RelInvoke && (hr.RelDone == 0 || kt < hr.RelDone) {
			continue
		}
		if hr.RelDone == 0 && bound >= h.End {
			continue
		}
		if hr.RelDone == 0 || hr.RelDone > bound {
			v = append(v, Violation{"liveness", hr.RelInvoke, fmt.Sprintf("%s: release did not return by its deadline", hr)})
		}
	}
	if h.HealT != 0 {
		for _, wl := range h.Workloads {
			ok := false
			for _, hr := range h.holds {
				if hr.WL == wl.Name() && hr.Grant >= h.HealT && hr.Grant <= h.HealT+int64(h.Bounds.Liveness) {
					ok = true
					break
				}
			}
			if !ok {
				v = append(v, Violation{"liveness", h.HealT, fmt.Sprintf("%s: no grant within %v of the final heal", wl.Name(), h.Bounds.Liveness)})
			}
		}
	}
	return v
}

// Stats summarises a history for the report.
func (h *History) Stats() string {
	var b strings.Builder
	grants := map[string]int{}
	for _, hr := range h.holds {
		grants[hr.WL]++
	}
	lost := map[string]int{}
	for _, hr := range h.holds {
		if hr.Lost != 0 {
			c, _, _ := strings.Cut(hr.LostErr, " (") // drop the figures
			if i := strings.LastIndex(c, ": "); i >= 0 {
				c = c[i+2:]
			}
			lost[c]++
		}
	}
	acc, rej := 0, 0
	for _, e := range h.fence {
		if e.Acc {
			acc++
		} else {
			rej++
		}
	}
	invokes := len(h.invokes)
	fails := 0
	for _, e := range h.Events {
		if e.Type == EvFail {
			fails++
		}
	}
	faults := map[string]int{}
	for _, e := range h.Events {
		if e.Type == EvNemesis {
			faults[strings.Fields(e.Note)[0]]++
		}
	}
	fmt.Fprintf(&b, "events %d, acquisitions %d (granted members %d, failed %d), grants by workload %v\n", len(h.Events), invokes, len(h.holds), fails, grants)
	fmt.Fprintf(&b, "fenced writes: %d accepted, %d rejected; sessions %d; nodes observed %d\n", acc, rej, len(h.sessions), len(h.nodeList))
	writes, lateW, reads, lateR := h.lateCounts()
	fmt.Fprintf(&b, "writes decided after the writer's own deadline: %d of %d sent (reads: %d of %d)\n", lateW, writes, lateR, reads)
	if len(h.Resurrected) > 0 {
		fmt.Fprintf(&b, "server inconsistency (not a library violation): %d deleted nodes shown again with their old czxid: %v\n", len(h.Resurrected), h.Resurrected)
	}
	fmt.Fprintf(&b, "losses by cause: %v\nfaults: %v\n", lost, faults)
	fmt.Fprintf(&b, "linearizability (porcupine): %s", h.registerSummary())
	return b.String()
}

// checkStaleGrant: an acquisition must not return a lease whose node the
// server had already deleted (the observer saw the deletion before the
// grant was returned): "held" requires our node in a fresh list.
func (h *History) checkStaleGrant() []Violation {
	var v []Violation
	for _, hr := range h.holds {
		if n := h.nodes[hr.Node]; n != nil && n.Del != 0 && n.Del < hr.Grant && !h.frozenIn(hr.W, n.Del, hr.Grant) {
			ctxNote := "its Context was not yet cancelled"
			if hr.Lost != 0 && hr.Lost <= hr.Grant+int64(time.Millisecond) {
				ctxNote = "its Context was already cancelled (" + hr.LostErr + ")"
			}
			v = append(v, Violation{"stale-grant", hr.Grant, fmt.Sprintf("%s: returned as granted %v after the server deleted its node; %s",
				hr, time.Duration(hr.Grant-n.Del).Round(time.Millisecond), ctxNote)})
		}
	}
	return v
}
