package core

import "strings"

// Contender node names. Three conventions share lock paths:
//
//   - zkrecipes, Curator and go-zookeeper's zk.Lock: protected names,
//     "_c_<guid>-<kind><10-digit sequence>", kind "lock-", "latch-",
//     "__READ__", "__WRIT__"...
//   - kazoo (Python): "<guid><kind><10-digit sequence>" with kind
//     KazooLock (Lock, WriteLock, Election) or KazooReadLock (ReadLock).
//
// Every convention ends in the sequence number ZooKeeper appends, one
// counter per parent, so contenders of all of them sort by it.
const (
	ProtectedPrefix = "_c_"
	KazooLock       = "__lock__"
	KazooReadLock   = "__rlock__"
)

// IsKazooKind reports whether kind is one of kazoo's node names.
func IsKazooKind(kind string) bool { return kind == KazooLock || kind == KazooReadLock }

// NamePrefix is the name a contender node of kind carrying guid is created
// with (ZooKeeper appends the sequence): kazoo's convention for kazoo's
// kinds, the protected one for every other.
func NamePrefix(guid, kind string) string {
	if IsKazooKind(kind) {
		return guid + kind
	}
	return ProtectedPrefix + guid + "-" + kind
}

// Tracked reports whether the create reply for path (the node's name,
// sequence included) is a contender's, whose reply a session remembers
// (czxid and owner) so the recipe learns its token without another read.
func Tracked(path string) bool {
	if strings.Contains(path, "/"+ProtectedPrefix) {
		return true
	}
	const seq = 10
	if len(path) < seq {
		return false
	}
	head := path[:len(path)-seq]
	for _, c := range path[len(path)-seq:] {
		if c < '0' || c > '9' {
			head = path // no sequence: a name before it
			break
		}
	}
	return strings.HasSuffix(head, KazooLock) || strings.HasSuffix(head, KazooReadLock)
}
