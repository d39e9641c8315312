package verify

import (
	"encoding/json"
	"net"
	"net/http"
	"sync"
)

type fenceReq struct {
	Res    string `json:"res"`
	Tok    int64  `json:"tok"`
	Writer string `json:"writer"`
	Op     int64  `json:"op"`
	Val    string `json:"val,omitempty"`  // write: the new value
	Exp    string `json:"exp,omitempty"`  // write: the value the writer expects to replace (recorded only)
	Excl   bool   `json:"excl,omitempty"` // read: under an exclusive lock
}

type fenceResp struct {
	Accepted bool   `json:"accepted"`
	Highest  int64  `json:"highest"`
	Value    string `json:"value,omitempty"` // read: the register's value
}

// Fence is the fenced resource: per resource it accepts a write only with a
// token at least as large as the largest accepted so far, and logs every
// attempt (with the time it was decided) through record.
//
// Each resource is also a register: an accepted write sets its value, and a
// read (/read) returns it if the reader's token is at least the largest
// accepted so far. A read under an exclusive lock (Excl) raises that largest
// token as a write does, so that a writer's read-modify-write cannot be
// interleaved with an older holder's write; shared readers do not raise it
// (they would fence each other out).
type Fence struct {
	mu      sync.Mutex
	highest map[string]int64
	value   map[string]string
	record  func(Event)
	srv     *http.Server
	URL     string
}

// StartFence serves the fence on 127.0.0.1.
func StartFence(record func(Event)) (*Fence, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &Fence{highest: map[string]int64{}, value: map[string]string{}, record: record, URL: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("/write", f.handle)
	mux.HandleFunc("/read", f.handleRead)
	f.srv = &http.Server{Handler: mux}
	go f.srv.Serve(ln)
	return f, nil
}

func (f *Fence) handle(w http.ResponseWriter, r *http.Request) {
	var q fenceReq
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	ok := q.Tok >= f.highest[q.Res]
	if ok {
		f.highest[q.Res] = q.Tok
		f.value[q.Res] = q.Val
	}
	hi := f.highest[q.Res]
	// Recorded under the lock, so the history holds the fence's decisions
	// in the order it made them.
	f.record(Event{T: now(), Src: "fence", Type: EvFenceWrite, Res: q.Res, Tok: q.Tok, Op: q.Op, Note: q.Writer, Acc: ok, Val: q.Val, Exp: q.Exp})
	f.mu.Unlock()
	json.NewEncoder(w).Encode(fenceResp{Accepted: ok, Highest: hi})
}

func (f *Fence) handleRead(w http.ResponseWriter, r *http.Request) {
	var q fenceReq
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	ok := q.Tok >= f.highest[q.Res]
	var val string
	if ok {
		val = f.value[q.Res]
		if q.Excl {
			f.highest[q.Res] = q.Tok
		}
	}
	hi := f.highest[q.Res]
	f.record(Event{T: now(), Src: "fence", Type: EvFenceRead, Res: q.Res, Tok: q.Tok, Op: q.Op, Note: q.Writer, Acc: ok, Val: val, Excl: q.Excl})
	f.mu.Unlock()
	json.NewEncoder(w).Encode(fenceResp{Accepted: ok, Highest: hi, Value: val})
}

// Close stops the server.
func (f *Fence) Close() { f.srv.Close() }
