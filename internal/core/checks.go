package core

import "context"

// checkedContext is a context whose Err first checks the session's local
// deadline, so that a check made after the deadline never says "live",
// even before any goroutine has run. check must not block.
type checkedContext struct {
	context.Context
	check func()
}

func (c checkedContext) Err() error {
	c.check()
	return c.Context.Err()
}

// WithChecks returns ctx with an Err that first runs check (which may
// cancel ctx synchronously). For a lease's Context.
func WithChecks(ctx context.Context, check func()) context.Context {
	return checkedContext{ctx, check}
}
