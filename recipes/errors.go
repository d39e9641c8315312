package recipes

import (
	"errors"

	"github.com/zkrecipes/zkrecipes/internal/core"
	"github.com/zkrecipes/zkrecipes/internal/obs"
)

func init() {
	// Most specific first: a loss error may wrap several.
	obs.RegisterCause(ErrSuspended, "suspended")
	obs.RegisterCause(ErrExpired, "expired")
	obs.RegisterCause(ErrDeadline, "deadline")
	obs.RegisterCause(ErrSessionChanged, "session_changed")
	obs.RegisterCause(ErrAuthFailed, "auth_failed")
	obs.RegisterCause(ErrClosed, "closed")
}

// Reasons a Session ends. Session.Err returns one of them (possibly
// wrapped); recipes wrap them into their own loss errors, so
// errors.Is(err, recipes.ErrExpired) works on a lost lease too.
var (
	// ErrClosed: Close was called.
	ErrClosed = core.ErrClosed
	// ErrExpired: the server reported the session expired.
	ErrExpired = errors.New("recipes: session expired")
	// ErrSessionChanged: go-zookeeper replaced the expired session with a
	// new one on the same connection. The new session owns nothing of ours.
	ErrSessionChanged = errors.New("recipes: session replaced by a new session")
	// ErrDeadline: no request was answered for the session timeout less the
	// safety margin, so the server may already have expired the session.
	ErrDeadline = errors.New("recipes: no answer from ZooKeeper within the session deadline")
	// ErrAuthFailed: the server rejected the session's credentials.
	ErrAuthFailed = errors.New("recipes: authentication failed")
	// ErrSuspended: the connection was lost while the session may still live.
	// Under LoseOnSuspend it is the cause given to leases cancelled then.
	ErrSuspended = core.ErrSuspended

	// ErrNilSession is returned by recipe constructors and calls given a nil *Session.
	ErrNilSession = core.ErrNilSession
	// ErrInvalidPath is wrapped by every error about a malformed znode path.
	ErrInvalidPath = core.ErrInvalidPath
)

// IsLoss reports whether err means the session is over for good, as
// opposed to a transient connection problem.
func IsLoss(err error) bool {
	return errors.Is(err, ErrClosed) || errors.Is(err, ErrExpired) ||
		errors.Is(err, ErrSessionChanged) || errors.Is(err, ErrDeadline) ||
		errors.Is(err, ErrAuthFailed)
}
