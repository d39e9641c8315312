package fence

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zkrecipes/zkrecipes/zktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(wrapMain{m}, goleak.IgnoreCurrent())
}

// wrapMain stops the shared servers before goleak looks for leaks.
type wrapMain struct{ m *testing.M }

func (w wrapMain) Run() int {
	defer zktest.Cleanup()
	defer stopPostgres()
	return w.m.Run()
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
