package election

import (
	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// binding is the election on one session: its contender queue there.
type binding = contend.Bound[*recipes.Session, *contend.Queue]

// queueOn builds the election's queue on sess; its directory is what a new
// session syncs before its first read.
func (e *Election) queueOn(sess *recipes.Session) (*contend.Queue, string, error) {
	q, err := contend.NewQueue("election", sess, e.path, kinds, e.opts.acl)
	if err != nil {
		return nil, "", err
	}
	return q, q.Dir, nil
}
