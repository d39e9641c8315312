package wire

import (
	"testing"
	"time"

	"github.com/zkrecipes/zkrecipes/internal/clock"
)

// FuzzFrames feeds the observer's frame parser a server's bytes, valid or
// not, split anywhere: it must never panic, answer no more requests than
// were sent, and report only created paths that are in the bytes.
func FuzzFrames(f *testing.F) {
	f.Add(frame(replyHeader(1, 42, 0, pathBody("/a/_c_x-lock-0000000001"))), uint16(7))
	f.Add(append(frame(replyHeader(2, 43, -101, nil)), frame(replyHeader(-1, 0, 0, nil))...), uint16(3))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}, uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		answered, created := 0, 0
		d := &Dialer{Hooks: Hooks{
			Answered: func(Answer) { answered++ },
			Created: func(path string, zxid, session int64) {
				created++
				if !contains(data, path) {
					t.Fatalf("created path %q is not in the bytes", path)
				}
			},
		}}
		c := &conn{d: d, handshakeSent: time.Now(), handshakeBoot: clock.Now()}
		c.parse(frame(connectResponse(7, 4000, []byte("pw"))))
		const sent = 3
		for xid := int32(1); xid <= sent; xid++ {
			c.pending = append(c.pending, sent_(xid))
		}
		cut := 0
		if len(data) > 0 {
			cut = int(split) % (len(data) + 1)
		}
		c.parse(data[:cut])
		c.parse(data[cut:])
		if answered > sent || created > answered {
			t.Fatalf("answered %d, created %d, of %d requests", answered, created, sent)
		}
	})
}

func sent_(xid int32) sent { return sent{xid: xid, opcode: opCreate, at: clock.Now()} }

func contains(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return true
		}
	}
	return false
}
