package core

import (
	"fmt"
	"time"
)

// State is the state of a Session as recipes see it.
type State int

const (
	// StateConnecting: Connect has not yet been granted a session.
	StateConnecting State = iota
	// StateConnected: the session was granted and the connection is up.
	StateConnected
	// StateSuspended: the connection is down; the session may still live
	// on the server. Under LoseOnSuspend every lease ends here.
	StateSuspended
	// StateReconnected: the connection is up again with the same session.
	StateReconnected
	// StateLost: the session is over (Err says why). It is final.
	StateLost
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateSuspended:
		return "suspended"
	case StateReconnected:
		return "reconnected"
	case StateLost:
		return "lost"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Live reports whether the connection is up with the session's own session.
func (s State) Live() bool { return s == StateConnected || s == StateReconnected }

// StateEvent is one state change of a Session.
type StateEvent struct {
	State State
	Time  time.Time
	Err   error // why, for StateLost
}
