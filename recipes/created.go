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
	mu    sync.Mutex
	nodes map[string]CreatedNode
	order []string
}

const createdLogMax = 4096

// CreatedNode is what the server's reply to a create said about the node:
// its Czxid and the Session of the connection the reply came on.
type CreatedNode = core.Created

func trackCreated(path string) bool { return core.Tracked(path) }

func (l *createdLog) add(path string, zxid, session int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nodes == nil {
		l.nodes = make(map[string]CreatedNode)
	}
	if len(l.order) >= createdLogMax {
		delete(l.nodes, l.order[0])
		l.order = l.order[1:]
	}
	l.nodes[path] = CreatedNode{Czxid: zxid, Session: session}
	l.order = append(l.order, path)
}

func (l *createdLog) take(path string) (CreatedNode, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, ok := l.nodes[path]
	if ok {
		delete(l.nodes, path)
		for i, p := range l.order {
			if p == path {
				l.order = append(l.order[:i], l.order[i+1:]...)
				break
			}
		}
	}
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
