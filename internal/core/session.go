// Package core is what zkrecipes' recipe packages need from a session and
// its users do not: the connection, goroutines the session owns, state
// listeners, background cleanups, create replies, metrics, and a client
// whose every request takes a context.
//
// recipes.Session implements Session without exporting any of it: package
// recipes registers a converter at init, and Of turns a *recipes.Session
// (or a Session) into a Client. core imports nothing of zkrecipes above
// the observer and metrics, so the queue machinery built on it sits below
// package recipes in the import graph.
package core

import (
	"context"
	"log/slog"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkrecipes/zkrecipes/internal/obs"
)

// Session is a live-or-ended ZooKeeper session as recipes use it.
type Session interface {
	// Conn is the go-zookeeper connection. Prefer Client's methods, which
	// return when their ctx is done or the session is over.
	Conn() *zk.Conn
	ID() int64
	Timeout() time.Duration
	Logger() *slog.Logger
	ACL() []zk.ACL
	// Path puts p under the session's chroot; Unpath strips it.
	Path(p string) string
	Unpath(full string) string

	// Err is nil while the session lives; Done is closed when it is over;
	// Context is cancelled then. All three check the local deadline.
	Err() error
	Done() <-chan struct{}
	Context() context.Context
	State() State
	// Changed returns the state and a channel closed at the next change.
	Changed() (State, <-chan struct{})
	// Suspensions counts the suspensions so far: read before and after a
	// decision, it says whether the connection dropped in between.
	Suspensions() uint64
	// OnStateChange calls fn with every state change, in order, on the
	// goroutine that saw it: fn must not block.
	OnStateChange(fn func(StateEvent)) (remove func())
	// OnNodeEvent calls fn with every watch event the connection receives
	// for the node at full (chroot applied), in order, on go-zookeeper's
	// receive loop, before any watch channel has it: fn must not block. It
	// sets no watch; the caller does.
	OnNodeEvent(full string, fn func(zk.Event)) (remove func())
	SyncOnce(ctx context.Context, path string) error
	// LoseOnSuspend reports whether the session's default loss policy ends
	// holds at a suspension (recipes.LoseOnSuspend).
	LoseOnSuspend() bool

	// Go runs fn in a goroutine Close waits for; false once Close began.
	Go(fn func()) bool
	// Cleanup retries fn in the background until it succeeds, fails
	// permanently, or the session is over.
	Cleanup(what string, fn func(ctx context.Context) error)
	// TakeCreated returns what a create reply said about a protected node.
	TakeCreated(full string) (Created, bool)
	Observer() *obs.Observer
}

// Created is what the server's reply to a create said about the node.
type Created struct {
	Czxid   int64 // the reply's zxid: the node's creation zxid
	Session int64 // the session of the connection the reply came on
}

var convert func(any) (Session, bool)

// Register sets how Of converts a public session. Package recipes calls it
// once, at init.
func Register(f func(any) (Session, bool)) { convert = f }

// Of returns the Client of x, a Session or a *recipes.Session; for
// anything else, including a nil *recipes.Session, it returns the zero
// Client, on which Call and Retry return ErrNilSession.
func Of(x any) Client {
	if s, ok := x.(Session); ok {
		return Client{Session: s}
	}
	if convert != nil {
		if s, ok := convert(x); ok {
			return Client{Session: s}
		}
	}
	return Client{}
}
