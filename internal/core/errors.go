package core

import "errors"

// The session errors the queue machinery hands on as causes. Package
// recipes exports them under the same names.
var (
	ErrClosed      = errors.New("recipes: session closed")
	ErrSuspended   = errors.New("recipes: connection to ZooKeeper suspended")
	ErrNilSession  = errors.New("recipes: nil session")
	ErrInvalidPath = errors.New("recipes: invalid path")
)
