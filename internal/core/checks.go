package core

import (
	"context"
	"time"
)

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

// deadlineContext is a checkedContext whose Deadline is asked of a
// function, so a deadline set after the context was made (a maximum hold
// time, counted from the grant) is reported.
type deadlineContext struct {
	checkedContext
	deadline func() (time.Time, bool)
}

func (c deadlineContext) Deadline() (time.Time, bool) { return c.deadline() }

// WithChecksAndDeadline is WithChecks whose Deadline is deadline's answer.
// ctx must be cancelled by the time it passes (the caller's timer does it).
func WithChecksAndDeadline(ctx context.Context, check func(), deadline func() (time.Time, bool)) context.Context {
	return deadlineContext{checkedContext{ctx, check}, deadline}
}
