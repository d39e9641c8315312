package verify

import (
	"strings"
	"testing"
	"time"
)

// The checkers must catch what they are for: synthetic histories.
func TestCheckersCatchViolations(t *testing.T) {
	ms := int64(time.Millisecond)
	base := int64(1_000_000) * ms
	root := "/r"
	res := "/r/mutex"
	wls := []Workload{Workloads["mutex"]}
	ok := func(w string, op, tok int64, at int64, node string) []Event {
		return []Event{
			{T: base + at*ms - ms, Src: w, Type: EvInvoke, WL: "mutex", Res: res, Op: op, Kind: "x"},
			{T: base + at*ms, Src: w, Type: EvOK, WL: "mutex", Res: res, Op: op, Kind: "x", Tok: tok, Node: res + "/" + node, Sess: op},
		}
	}
	var ev []Event
	ev = append(ev, Event{T: base, Src: "a", Type: EvSession, Sess: 1}, Event{T: base, Src: "b", Type: EvSession, Sess: 2})
	ev = append(ev, ok("a", 1, 10, 10, "n1")...)
	ev = append(ev, ok("b", 2, 20, 50, "n2")...) // overlaps a's hold: exclusion
	ev = append(ev,
		Event{T: base + 60*ms, Src: "fence", Type: EvFenceWrite, Res: res, Tok: 20, Op: 2, Note: "b", Acc: true},
		Event{T: base + 70*ms, Src: "fence", Type: EvFenceWrite, Res: res, Tok: 10, Op: 1, Note: "a", Acc: true}, // stale
		Event{T: base + 80*ms, Src: "a", Type: EvActEnd, Res: res, Op: 1},
		Event{T: base + 90*ms, Src: "b", Type: EvActEnd, Res: res, Op: 2},
	)
	ev = append(ev, ok("a", 3, 5, 200, "n3")...) // token going backwards
	h := NewHistory(ev, defaultBounds, wls, root, 0, base+time.Second.Nanoseconds())
	got := map[string]bool{}
	for _, v := range h.Check() {
		got[v.Check] = true
		t.Log(v)
	}
	for _, want := range []string{"exclusion", "stale-write", "tokens"} {
		if !got[want] {
			t.Errorf("checker %s did not fire", want)
		}
	}
	if !strings.Contains(h.Stats(), "fenced writes: 2 accepted") {
		t.Errorf("stats: %s", h.Stats())
	}
}

// The register checker: a lost update and a stale read are caught, a
// sequential history passes.
func TestRegisterChecker(t *testing.T) {
	ms := int64(time.Millisecond)
	base := int64(1_000_000) * ms
	res := "/r/rw"
	rd := func(w string, at, dur int64, val string) Event {
		return Event{T: base + at*ms, Src: w, Type: EvRead, Res: res, Acc: true, Val: val, Dur: dur * ms}
	}
	wr := func(w string, at, dur int64, exp, val string) []Event {
		return []Event{
			{T: base + at*ms, Src: w, Type: EvWrite, Res: res, Acc: true, Val: val, Exp: exp, Dur: dur * ms},
			{T: base + (at+dur/2)*ms, Src: "fence", Type: EvFenceWrite, Res: res, Acc: true, Note: w, Val: val, Exp: exp},
		}
	}
	check := func(ev []Event) map[string]bool {
		h := NewHistory(ev, defaultBounds, nil, "/r", 0, base+time.Second.Nanoseconds())
		got := map[string]bool{}
		for _, v := range h.checkRegisters() {
			got[v.Check] = true
			t.Log(v)
		}
		t.Log(h.registerSummary())
		return got
	}
	// Sequential: a writes 1, b reads 1, b writes 2 after reading 1, a reads 2.
	var good []Event
	good = append(good, rd("a", 0, 2, ""))
	good = append(good, wr("a", 10, 2, "", "1")...)
	good = append(good, rd("b", 20, 2, "1"))
	good = append(good, wr("b", 30, 2, "1", "2")...)
	good = append(good, rd("a", 40, 2, "2"))
	if got := check(good); got["linearizable"] {
		t.Error("a sequential history was reported non-linearizable")
	}
	// Lost update: a and b both read "" and both write.
	var lost []Event
	lost = append(lost, rd("a", 0, 2, ""), rd("b", 1, 2, ""))
	lost = append(lost, wr("a", 10, 2, "", "a1")...)
	lost = append(lost, wr("b", 20, 2, "", "b1")...)
	if got := check(lost); !got["linearizable"] {
		t.Error("lost update not caught")
	}
	// Stale read: b reads "1" after "2" was written.
	var stale []Event
	stale = append(stale, wr("a", 0, 2, "", "1")...)
	stale = append(stale, wr("a", 10, 2, "1", "2")...)
	stale = append(stale, rd("b", 20, 2, "1"))
	if got := check(stale); !got["linearizable"] {
		t.Error("stale read not caught")
	}
}

// A fenced write (or read) decided after the writer's own session deadline
// is a violation, accepted or not; one decided in time is not.
func TestLateWriteChecker(t *testing.T) {
	ms := int64(time.Millisecond)
	base := int64(1_000_000) * ms
	res := "/r/mutex"
	ev := []Event{
		{T: base + 10*ms, Src: "a", Type: EvWrite, Res: res, Op: 1, Tok: 10, Acc: true},
		{T: base + 20*ms, Src: "a", Type: EvWrite, Res: res, Op: 1, Tok: 10, Acc: true, Late: 3 * ms},
		{T: base + 30*ms, Src: "a", Type: EvRead, Res: res, Op: 1, Tok: 10, Acc: false, Late: 1},
		{T: base + 40*ms, Src: "b", Type: EvRead, Res: res, Op: 2, Tok: 20, Acc: true},
	}
	h := NewHistory(ev, defaultBounds, nil, "/r", 0, base+time.Second.Nanoseconds())
	v := h.checkLate()
	for _, x := range v {
		t.Log(x)
	}
	if len(v) != 2 || v[0].Check != "late-write" || !strings.Contains(v[0].Msg, "3ms after") || !strings.Contains(v[1].Msg, "read") {
		t.Fatalf("late-write violations: %v", v)
	}
	found := false
	for _, x := range h.Check() {
		found = found || x.Check == "late-write"
	}
	if !found {
		t.Error("Check does not run the late-write checker")
	}
	if s := h.Stats(); !strings.Contains(s, "writes decided after the writer's own deadline: 1 of 2 sent (reads: 1 of 2)") {
		t.Errorf("stats: %s", s)
	}
	if v := NewHistory(ev[:1], defaultBounds, nil, "/r", 0, base+time.Second.Nanoseconds()).checkLate(); len(v) != 0 {
		t.Errorf("a write in time was reported: %v", v)
	}
}

// The clock check: a fence record before the worker's send (the worker's
// clock ahead) or after its reply (behind) is reported, once per worker;
// records inside the span are not.
func TestClockCheck(t *testing.T) {
	ms := int64(time.Millisecond)
	base := int64(1_000_000) * ms
	res := "/r/mutex"
	req := func(w string, op, at, dur, fenceAt int64) []Event {
		return []Event{
			{T: base + at*ms, Src: w, Type: EvWrite, Res: res, Op: op, Tok: op, Acc: true, Dur: dur * ms},
			{T: base + fenceAt*ms, Src: "fence", Type: EvFenceWrite, Res: res, Op: op, Tok: op, Note: w, Acc: true},
		}
	}
	var ev []Event
	ev = append(ev, req("good", 1, 10, 4, 12)...)
	ev = append(ev, req("ahead", 2, 20, 4, 15)...) // recorded 5 ms before it was sent
	ev = append(ev, req("ahead", 3, 30, 4, 29)...) // 1 ms: the smaller skew of the two
	ev = append(ev, req("behind", 4, 40, 4, 50)...)
	ev = append(ev, // a read, recorded 3 ms before it was sent
		Event{T: base + 60*ms, Src: "reader", Type: EvRead, Res: res, Op: 5, Tok: 5, Acc: true, Dur: 4 * ms},
		Event{T: base + 57*ms, Src: "fence", Type: EvFenceRead, Res: res, Op: 5, Tok: 5, Note: "reader", Acc: true})
	h := NewHistory(ev, defaultBounds, nil, "/r", 0, base+time.Second.Nanoseconds())
	got := map[string]string{}
	for _, v := range h.checkClocks() {
		t.Log(v)
		for _, w := range []string{"good", "ahead", "behind", "reader"} {
			if strings.HasPrefix(v.Msg, w+"'s clock") {
				got[w] = v.Msg
			}
		}
	}
	if len(got) != 3 || got["good"] != "" {
		t.Fatalf("reported %v, want ahead, behind and reader only", got)
	}
	if !strings.Contains(got["reader"], "at least 3ms ahead of") || !strings.Contains(got["reader"], "its read of op 5") {
		t.Fatalf("the read: %v", got["reader"])
	}
	if !strings.Contains(got["ahead"], "at least 5ms ahead of") || !strings.Contains(got["behind"], "at least 6ms behind") {
		t.Fatalf("skews: %v", got)
	}
}
