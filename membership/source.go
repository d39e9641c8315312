package membership

import (
	"github.com/zkrecipes/zkrecipes/internal/contend"
	"github.com/zkrecipes/zkrecipes/recipes"
)

// binding is the group on one session: its full path there (chroot
// applied).
type binding = contend.Bound[*recipes.Session, string]

// pathOn returns the group's full path on sess, which is also what a new
// session syncs before its first read.
func (g *Group) pathOn(sess *recipes.Session) (string, string, error) {
	full := sess.Path(g.path)
	return full, full, nil
}
