package recipes

import (
	"sync"

	"github.com/zkrecipes/zkrecipes/internal/core"
)

// createdLog remembers, for protected nodes ("_c_" names) created by this
// session, the czxid and owner that the server's create reply carried, so a
// recipe learns its node's fencing token without another round trip
// (go-zookeeper's Create returns only the path). It is bounded: entries that
// nobody takes (a create whose caller gave up) are forgotten, oldest first.
type createdLog struct {
	mu  sync.Mutex
	cur map[string]CreatedNode // the newest entries
	old map[string]CreatedNode // the generation before: dropped next
}

// createdLogMax bounds the entries kept: two generations of half as many.
const createdLogMax = 4096

// CreatedNode is what the server's reply to a create said about the node:
// its Czxid and the Session of the connection the reply came on.
type CreatedNode = core.Created

func trackCreated(path string) bool { return core.Tracked(path) }

func (l *createdLog) add(path string, zxid, session int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.cur) >= createdLogMax/2 || l.cur == nil {
		l.old, l.cur = l.cur, make(map[string]CreatedNode)
	}
	l.cur[path] = CreatedNode{Czxid: zxid, Session: session}
}

func (l *createdLog) take(path string) (CreatedNode, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n, ok := l.cur[path]; ok {
		delete(l.cur, path)
		return n, true
	}
	n, ok := l.old[path]
	delete(l.old, path)
	return n, ok
}

// takeCreated returns what the server's reply said about a protected node
// ("/_c_" in its name) that this session created at full path: its czxid
// and the session that owns it. Each path can be taken once; ok is false
// when the reply was not seen (for example the create was recovered after
// a lost reply), and the caller must then read the node's stat.
func (s *Session) takeCreated(full string) (CreatedNode, bool) {
	return s.created.take(full)
}
