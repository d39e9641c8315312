package verify

import (
	"bufio"
	"encoding/json"
	"flag"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

var flagHistory = flag.String("verify.history", "", "re-run the checkers over a kept history directory")

// TestRecheck re-runs the checkers over a kept run directory
// (-verify.history=DIR): for working on a checker without re-running faults.
func TestRecheck(t *testing.T) {
	if *flagHistory == "" {
		t.Skip("no -verify.history")
	}
	f, err := os.Open(filepath.Join(*flagHistory, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var root string
	var healT, end int64
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Type == EvInvoke {
			root = commonDir(root, e.Res)
		}
		if e.Type == EvHeal && e.Note == "final" {
			healT = e.T
		}
		end = max(end, e.T)
		evs = append(evs, e)
	}
	var wls []Workload
	for _, n := range DefaultWorkloads {
		wls = append(wls, Workloads[n])
	}
	h := NewHistory(evs, defaultBounds, wls, root, healT, end)
	for _, v := range h.Check() {
		t.Error(v)
	}
	t.Log(h.Stats())
}

// commonDir is the longest directory that holds both a and b (b alone when
// a is empty): over every invoke's Res, the run's root, whatever the first
// workload was.
func commonDir(a, b string) string {
	if a == "" {
		return path.Dir(b)
	}
	for !strings.HasPrefix(b+"/", a+"/") && a != "/" {
		a = path.Dir(a)
	}
	return a
}
