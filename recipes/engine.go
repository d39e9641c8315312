package recipes

import (
	"context"
	"log/slog"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/internal/obs"
)

// engine is a Session as zkrecipes' recipe packages see it (core.Session):
// the plumbing they need and users do not, kept off Session's own method
// set. core.Of finds it through the converter registered here.
type engine Session

func init() {
	core.Register(func(x any) (core.Session, bool) {
		s, ok := x.(*Session)
		if !ok || s == nil {
			return nil, false
		}
		return (*engine)(s), true
	})
}

func (e *engine) s() *Session { return (*Session)(e) }

func (e *engine) Go(fn func()) bool                                   { return e.s().spawn(fn) }
func (e *engine) Cleanup(what string, fn func(context.Context) error) { e.s().cleanup(what, fn) }
func (e *engine) OnStateChange(fn func(StateEvent)) func()            { return e.s().onStateChange(fn) }
func (e *engine) OnNodeEvent(full string, fn func(zk.Event)) func() {
	return e.s().onNodeEvent(full, fn)
}
func (e *engine) TakeCreated(full string) (CreatedNode, bool) { return e.s().takeCreated(full) }
func (e *engine) Suspensions() uint64                         { return e.s().suspensionCount() }
func (e *engine) Changed() (State, <-chan struct{})           { return e.s().stateChanged() }
func (e *engine) Unpath(full string) string                   { return e.s().unpath(full) }
func (e *engine) Observer() *obs.Observer                     { return e.s().obs }

// What users have too.
func (e *engine) Conn() *zk.Conn                                  { return e.s().Conn() }
func (e *engine) ID() int64                                       { return e.s().ID() }
func (e *engine) Timeout() time.Duration                          { return e.s().Timeout() }
func (e *engine) Logger() *slog.Logger                            { return e.s().Logger() }
func (e *engine) ACL() []zk.ACL                                   { return e.s().ACL() }
func (e *engine) Path(p string) string                            { return e.s().Path(p) }
func (e *engine) Err() error                                      { return e.s().Err() }
func (e *engine) Done() <-chan struct{}                           { return e.s().Done() }
func (e *engine) Context() context.Context                        { return e.s().Context() }
func (e *engine) State() State                                    { return e.s().State() }
func (e *engine) SyncOnce(ctx context.Context, path string) error { return e.s().SyncOnce(ctx, path) }
func (e *engine) LoseOnSuspend() bool                             { return e.s().LossPolicy() == LoseOnSuspend }
