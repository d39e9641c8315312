package verify

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// RegisterTimeout bounds the linearizability check of each register.
var RegisterTimeout = 60 * time.Second

// RegisterResult is the outcome of the linearizability check of one fenced
// register.
type RegisterResult struct {
	Res           string
	Reads, Writes int
	Result        porcupine.CheckResult // Ok, Illegal, or Unknown (timed out: not verified)
	Took          time.Duration
}

func (r RegisterResult) String() string {
	what := map[porcupine.CheckResult]string{porcupine.Ok: "linearizable", porcupine.Illegal: "NOT LINEARIZABLE",
		porcupine.Unknown: fmt.Sprintf("NOT VERIFIED (no answer within %v)", RegisterTimeout)}[r.Result]
	return fmt.Sprintf("%s %s (%d reads, %d writes, %v)", r.Res, what, r.Reads, r.Writes, r.Took.Round(time.Millisecond))
}

// regInput is a register operation: a read, or a write of Val replacing
// Exp (the value the writer read or wrote just before, under its lock).
type regInput struct {
	Read     bool
	Exp, Val string
}

// registerModel is a register whose writes are read-modify-writes: a write
// is legal only when the register holds the value its writer last saw. A
// writer under an exclusive lock reads the value and then writes, so any
// write accepted in between (two writers acting at once, the fence letting
// an older one through) makes the history non-linearizable.
var registerModel = porcupine.Model{
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.Read {
			return output.(string) == state.(string), state
		}
		return in.Exp == state.(string), in.Val
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.Read {
			return fmt.Sprintf("read() → %q", output)
		}
		return fmt.Sprintf("write(%q → %q)", in.Exp, in.Val)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
}

// registerOps builds the porcupine history of each register, by resource:
// the resources that workers read (rwmutex).
//
//   - A read counts when the fence accepted it and the worker got the reply:
//     from the worker's send time to its receipt of the reply.
//   - A write counts when the fence accepted it (rejected writes change
//     nothing). Its interval is the worker's, from send to reply; when the
//     worker has no reply (HTTP error, killed), it is the instant the fence
//     applied it, which lies within the true interval.
func (h *History) registerOps() map[string][]porcupine.Operation {
	read := map[string]bool{}
	type key struct{ res, val string }
	replied := map[key]Event{}
	for _, e := range h.Events {
		switch {
		case e.Type == EvRead:
			read[e.Res] = true
		case e.Type == EvWrite && e.Val != "" && e.Err == "" && e.Acc:
			replied[key{e.Res, e.Val}] = e
		}
	}
	clients := map[string]int{}
	client := func(w string) int {
		if _, ok := clients[w]; !ok {
			clients[w] = len(clients)
		}
		return clients[w]
	}
	ops := map[string][]porcupine.Operation{}
	for _, e := range h.Events {
		if !read[e.Res] {
			continue
		}
		switch {
		case e.Type == EvRead && e.Acc && e.Err == "":
			ops[e.Res] = append(ops[e.Res], porcupine.Operation{ClientId: client(e.Src), Input: regInput{Read: true},
				Call: e.T, Output: e.Val, Return: e.T + max(e.Dur, 1)})
		case e.Type == EvFenceWrite && e.Acc:
			op := porcupine.Operation{ClientId: client(e.Note), Input: regInput{Exp: e.Exp, Val: e.Val},
				Call: e.T, Output: "", Return: e.T}
			if w, ok := replied[key{e.Res, e.Val}]; ok && e.Val != "" {
				op.Call, op.Return = w.T, w.T+max(w.Dur, 1)
			}
			ops[e.Res] = append(ops[e.Res], op)
		}
	}
	return ops
}

// registerResults checks every register once (the result is cached).
func (h *History) registerResults() []RegisterResult {
	h.regOnce.Do(func() {
		byRes := h.registerOps()
		var resources []string
		for r := range byRes {
			resources = append(resources, r)
		}
		sort.Strings(resources)
		for _, r := range resources {
			ops := byRes[r]
			rr := RegisterResult{Res: r}
			for _, op := range ops {
				if op.Input.(regInput).Read {
					rr.Reads++
				} else {
					rr.Writes++
				}
			}
			start := time.Now()
			rr.Result = porcupine.CheckOperationsTimeout(registerModel, ops, RegisterTimeout)
			rr.Took = time.Since(start)
			h.regRes = append(h.regRes, rr)
		}
	})
	return h.regRes
}

// checkRegisters: the history of each fenced register (values written by
// writers under exclusive locks, read by readers under read locks) is
// linearizable. An inconclusive check (timeout) is not a violation; it is
// reported as "not verified" by Stats and RegisterResults.
func (h *History) checkRegisters() []Violation {
	var v []Violation
	for _, r := range h.registerResults() {
		if r.Result == porcupine.Illegal {
			v = append(v, Violation{"linearizable", h.End, fmt.Sprintf("the history of register %s (%d reads, %d writes) is not linearizable: "+
				"a read saw a value other than the last write, or a write replaced a value other than the one its writer had read (lost update)",
				r.Res, r.Reads, r.Writes)})
		}
	}
	return v
}

// RegisterResults returns the outcome of the linearizability check of each
// register.
func (h *History) RegisterResults() []RegisterResult { return h.registerResults() }

// RegistersVerified reports whether every register's check was conclusive.
func (h *History) RegistersVerified() bool {
	for _, r := range h.registerResults() {
		if r.Result == porcupine.Unknown {
			return false
		}
	}
	return true
}

func (h *History) registerSummary() string {
	rs := h.registerResults()
	if len(rs) == 0 {
		return "no register reads in the history (rwmutex workload not run): not verified"
	}
	var parts []string
	for _, r := range rs {
		parts = append(parts, r.String())
	}
	return strings.Join(parts, "; ")
}
