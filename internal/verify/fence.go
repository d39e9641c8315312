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
}

type fenceResp struct {
	Accepted bool  `json:"accepted"`
	Highest  int64 `json:"highest"`
}

// Fence is the fenced resource: per resource it accepts a write only with a
// token at least as large as the largest accepted so far, and logs every
// attempt (with the time it was decided) through record.
type Fence struct {
	mu      sync.Mutex
	highest map[string]int64
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
	f := &Fence{highest: map[string]int64{}, record: record, URL: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("/write", f.handle)
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
	}
	hi := f.highest[q.Res]
	// Recorded under the lock, so the history holds the fence's decisions
	// in the order it made them.
	f.record(Event{T: now(), Src: "fence", Type: EvFenceWrite, Res: q.Res, Tok: q.Tok, Op: q.Op, Note: q.Writer, Acc: ok})
	f.mu.Unlock()
	json.NewEncoder(w).Encode(fenceResp{Accepted: ok, Highest: hi})
}

// Close stops the server.
func (f *Fence) Close() { f.srv.Close() }
