package core

import (
	"fmt"
	"strings"
)

// ValidatePath checks that p is an absolute znode path a recipe may use: it
// starts with '/', is not the root, has no empty, "." or ".." segments, no
// trailing '/', no control characters, and is not under ZooKeeper's own
// "/zookeeper" namespace (quotas, config). The error wraps ErrInvalidPath
// and names the path and the problem.
func ValidatePath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidPath, p, why) }
	switch {
	case p == "":
		return bad("empty")
	case p[0] != '/':
		return bad("must start with '/'")
	case p == "/":
		return bad("the root cannot hold a recipe")
	case strings.HasSuffix(p, "/"):
		return bad("must not end with '/'")
	case p == "/zookeeper" || strings.HasPrefix(p, "/zookeeper/"):
		return bad("under ZooKeeper's reserved /zookeeper namespace")
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return bad("empty segment")
		case ".", "..":
			return bad("relative segment " + seg)
		}
	}
	for _, r := range p {
		if r == 0 || (r > 0 && r < 0x20) || (r >= 0x7f && r <= 0x9f) ||
			(r >= 0xd800 && r <= 0xf8ff) || (r >= 0xfff0 && r <= 0xffff) {
			return bad(fmt.Sprintf("character %U not allowed", r))
		}
	}
	return nil
}
