package recipes

import "github.com/zkrecipes/zkrecipes/internal/core"

// State is the state of a Session as recipes see it: StateConnecting,
// StateConnected, StateSuspended, StateReconnected or StateLost. Its String
// names it; Live reports whether the connection is up with the session.
type State = core.State

// The states of a Session.
const (
	// StateConnecting: Connect has not yet been granted a session.
	StateConnecting = core.StateConnecting
	// StateConnected: the session was granted and the connection is up.
	StateConnected = core.StateConnected
	// StateSuspended: the connection is down; the session may still live
	// on the server. Under LoseOnSuspend every lease ends here.
	StateSuspended = core.StateSuspended
	// StateReconnected: the connection is up again with the same session.
	StateReconnected = core.StateReconnected
	// StateLost: the session is over (Err says why). It is final.
	StateLost = core.StateLost
)

// StateEvent is one state change of a Session: its State, its Time, and
// for StateLost the Err that says why.
type StateEvent = core.StateEvent
