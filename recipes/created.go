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
//
// The receive loop adds an entry for each create reply and the creator
// takes it right after, so with many acquisitions in flight on a session
// (hundreds of goroutines) one lock would be contended by all of them and
// by the receive loop: the log is split by path into createdShards shards.
type createdLog struct {
	shards [createdShards]createdShard
}

type createdShard struct {
	mu  sync.Mutex
	cur map[string]CreatedNode // the newest entries
	old map[string]CreatedNode // the generation before: dropped next
}

// createdLogMax bounds the entries kept: in each shard, two generations of
// half its share. An entry still there after about 128 more creates land
// in its shard (some 2,048 on the session) may be dropped; its creator
// then reads the node's stat, one request more.
const (
	createdLogMax = 4096
	createdShards = 16
)

// CreatedNode is what the server's reply to a create said about the node:
// its Czxid and the Session of the connection the reply came on.
type CreatedNode = core.Created

func trackCreated(path string) bool { return core.Tracked(path) }

// shard returns path's shard (FNV-1a of the path).
func (l *createdLog) shard(path string) *createdShard {
	h := uint32(2166136261)
	for i := 0; i < len(path); i++ {
		h = (h ^ uint32(path[i])) * 16777619
	}
	return &l.shards[h%createdShards]
}

func (l *createdLog) add(path string, zxid, session int64) {
	s := l.shard(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cur) >= createdLogMax/createdShards/2 || s.cur == nil {
		s.old, s.cur = s.cur, make(map[string]CreatedNode)
	}
	s.cur[path] = CreatedNode{Czxid: zxid, Session: session}
}

func (l *createdLog) take(path string) (CreatedNode, bool) {
	s := l.shard(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.cur[path]; ok {
		delete(s.cur, path)
		return n, true
	}
	n, ok := s.old[path]
	delete(s.old, path)
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
