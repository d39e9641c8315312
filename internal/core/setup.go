package core

import (
	"context"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// Setup is what every recipe constructor checks, in this order: its
// options (nil ones skipped; the first error wins), its source (srcErr,
// what recipes.CheckSource said) and its path. Recipe constructors never
// fail: they keep Setup's error and every method returns it, prefixed with
// the recipe's package name, pkg.
func Setup[O any, F ~func(*O) error](pkg string, o *O, opts []F, srcErr error, path string) error {
	for _, f := range opts {
		if f == nil {
			continue
		}
		if err := f(o); err != nil {
			return err
		}
	}
	if srcErr != nil {
		return fmt.Errorf("%s: %w", pkg, srcErr)
	}
	if err := ValidatePath(path); err != nil {
		return fmt.Errorf("%s: %w", pkg, err)
	}
	return nil
}

// CheckACL returns acl, or an error naming pkg when it is empty: every
// recipe's WithACL.
func CheckACL(pkg string, acl []zk.ACL) ([]zk.ACL, error) {
	if len(acl) == 0 {
		return nil, fmt.Errorf("%s: empty ACL", pkg)
	}
	return acl, nil
}

// ACLOr returns acl, or the session's ACL when acl is nil.
func ACLOr(acl []zk.ACL, s Session) []zk.ACL {
	if acl != nil {
		return acl
	}
	return s.ACL()
}

// Check is what every method of a recipe handle checks first: the error
// Setup found (setupErr), then a nil ctx, named with the recipe's package,
// the operation and the handle's path.
func Check(ctx context.Context, setupErr error, pkg, op, path string) error {
	if setupErr != nil {
		return setupErr
	}
	if ctx == nil {
		return fmt.Errorf("%s: %s %s: nil context", pkg, op, path)
	}
	return nil
}
