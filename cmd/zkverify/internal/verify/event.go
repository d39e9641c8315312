package verify

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/clock"
)

// Event is one line of the history. Workers print them as JSON lines on
// stdout; the fence, the observer and the nemesis append theirs in the
// orchestrator. T is the stamp from now(): the boot clock in nanoseconds on
// Linux, which all processes of a run read alike (they run on one machine).
type Event struct {
	T    int64  `json:"t"`
	Src  string `json:"src"`            // worker name, "fence", "observer", "nemesis"
	Type string `json:"type"`           // see the constants below
	WL   string `json:"wl,omitempty"`   // workload
	Res  string `json:"res,omitempty"`  // resource: the lock path (also the fence resource)
	Op   int64  `json:"op,omitempty"`   // per-worker operation id
	Kind string `json:"kind,omitempty"` // "x" exclusive, "r" read, "w" write, "p" permit, "l" leader
	Tok  int64  `json:"tok,omitempty"`  // fencing token
	Node string `json:"node,omitempty"` // full znode path
	Sess int64  `json:"sess,omitempty"` // ZooKeeper session id
	Pass string `json:"pass,omitempty"` // session password (hex), "session" events only
	Acc  bool   `json:"acc,omitempty"`  // write accepted
	Err  string `json:"err,omitempty"`  // cause / error text
	Slot int    `json:"slot,omitempty"` // worker slot, nemesis events
	Dur  int64  `json:"dur,omitempty"`  // nanoseconds
	Note string `json:"note,omitempty"`
	// The fenced register (reads and writes carrying a value):
	Val  string `json:"val,omitempty"`  // value written, or read
	Exp  string `json:"exp,omitempty"`  // value the writer read before this write (its expectation)
	Excl bool   `json:"excl,omitempty"` // a read under an exclusive lock (it raises the fence)
	// Late is set on a worker's write and read events when the writer's
	// local session deadline (recipes.Session.Deadline) had already passed
	// when it decided to send, after its lease check: by how much, in
	// nanoseconds. Such a request was decided on a lease the library
	// should already have reported lost.
	Late int64 `json:"late,omitempty"`
}

// Event types.
const (
	EvSession     = "session"     // worker: new session (Sess, Pass, Dur = negotiated timeout)
	EvSessionEnd  = "session_end" // worker: session over (Err)
	EvInvoke      = "invoke"      // worker: acquire/campaign called
	EvOK          = "ok"          // worker: granted (Res, Tok, Node); one per member lock
	EvFail        = "fail"        // worker: acquire returned an error
	EvActEnd      = "act_end"     // worker: stopped acting on the resource
	EvWrite       = "write"       // worker: fenced write attempt (T = send time, Dur = until the reply, Acc, Val, Exp, Late)
	EvRead        = "read"        // worker: fenced read of the register (T = send time, Dur = until the reply, Acc, Val, Late)
	EvLost        = "lost"        // worker: told the lease is lost (Err = cause)
	EvRelInvoke   = "rel_invoke"  // worker: Release called
	EvRelDone     = "rel_done"    // worker: Release returned
	EvExit        = "exit"        // worker: clean exit
	EvFenceWrite  = "fwrite"      // fence: a write received (Acc, Tok, Op, Note = writer, Val, Exp)
	EvFenceRead   = "fread"       // fence: a read received (Acc, Tok, Op, Note = reader, Val = value returned, Excl)
	EvNodeAdd     = "node_add"    // observer: child seen (Node, Sess = owner, Tok = czxid)
	EvNodeDel     = "node_del"    // observer: child gone
	EvObsBlind    = "obs_blind"   // observer: cannot read Res (synced) from here on
	EvObsSeen     = "obs_seen"    // observer: reads Res again
	EvNemesis     = "nemesis"     // nemesis: fault started (Note = what, Slot, Dur)
	EvHeal        = "heal"        // nemesis: fault healed
	EvWorkerKill  = "wkill"       // nemesis: worker process killed (Note = worker)
	EvExpired     = "expired"     // nemesis: the server no longer lists the worker's session, expired at its request (Note = worker)
	EvFreeze      = "freeze"      // nemesis: SIGSTOP (Note = worker)
	EvThaw        = "thaw"        // nemesis: SIGCONT (Note = worker)
	EvPartition   = "partition"   // nemesis: worker proxy blackholed (Note = worker)
	EvUnpartition = "unpartition"
	EvWorkerStart = "wstart" // orchestrator: worker process started (Note = worker)
	EvWorkerExit  = "wexit"  // orchestrator: worker process exited (Err = status)
)

// now stamps events. Every process of a run (the test, its workers) stamps
// its events, and the checkers compare stamps across processes, so the
// clock must be one they all read alike and that nobody can set: on Linux
// that is CLOCK_BOOTTIME (package clock), in nanoseconds since boot. The wall
// clock is neither: a CI machine once stepped it ~9 s forward mid-run, and
// every hold that spanned the step looked 9 s longer (orphans, hangs that
// never were). Elsewhere, where no such shared clock is at hand, it is the
// wall clock.
func now() int64 {
	if clock.Boottime {
		return int64(clock.Now())
	}
	return time.Now().UnixNano()
}

// wallOffset turns a stamp into wall-clock time for messages, as the wall
// clock stood when this process started.
var wallOffset = time.Now().UnixNano() - now()

// wallTime is the wall-clock time of stamp t, for messages. Histories kept
// before stamps moved to the boot clock hold wall-clock nanoseconds (all
// past 2001, > 1e18); those are shown as they are.
func wallTime(t int64) time.Time {
	if t > 1e18 {
		return time.Unix(0, t)
	}
	return time.Unix(0, t+wallOffset)
}

// emitter writes events as JSON lines, one write per line so that a killed
// process loses nothing it printed.
type emitter struct {
	mu  sync.Mutex
	w   io.Writer
	src string
}

func (e *emitter) emit(ev Event) {
	if ev.T == 0 {
		ev.T = now()
	}
	ev.Src = e.src
	b, _ := json.Marshal(ev)
	b = append(b, '\n')
	e.mu.Lock()
	e.w.Write(b)
	e.mu.Unlock()
}
