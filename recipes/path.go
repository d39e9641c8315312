package recipes

import "github.com/zkrecipes/zkrecipes/internal/core"

// ValidatePath checks that p is an absolute znode path a recipe may use: it
// starts with '/', is not the root, has no empty, "." or ".." segments, no
// trailing '/', no control characters, and is not under ZooKeeper's own
// "/zookeeper" namespace. The error wraps ErrInvalidPath and
// names the path and the problem.
func ValidatePath(p string) error { return core.ValidatePath(p) }
