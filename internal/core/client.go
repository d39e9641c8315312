package core

import (
	"context"
	"errors"

	"github.com/go-zookeeper/zk"
)

// Client is a session with a context on every request: each method returns
// when ZooKeeper answers, ctx is done (with its cause) or the session is
// over (with its Err), as Call does. It is a small value; copy it freely.
type Client struct {
	Session
}

// Create creates path; see zk.Conn.Create.
func (c Client) Create(ctx context.Context, path string, data []byte, flags int32, acl []zk.ACL) (string, error) {
	return Call(ctx, c, func(z *zk.Conn) (string, error) { return z.Create(path, data, flags, acl) })
}

// Delete deletes path at version (-1: any).
func (c Client) Delete(ctx context.Context, path string, version int32) error {
	_, err := Call(ctx, c, func(z *zk.Conn) (struct{}, error) { return struct{}{}, z.Delete(path, version) })
	return err
}

// Set writes data to path at version (-1: any).
func (c Client) Set(ctx context.Context, path string, data []byte, version int32) (*zk.Stat, error) {
	return Call(ctx, c, func(z *zk.Conn) (*zk.Stat, error) { return z.Set(path, data, version) })
}

// Node is a node's data and stat.
type Node struct {
	Data []byte
	Stat *zk.Stat
}

// Get reads path.
func (c Client) Get(ctx context.Context, path string) (Node, error) {
	return Call(ctx, c, func(z *zk.Conn) (Node, error) {
		data, st, err := z.Get(path)
		return Node{data, st}, err
	})
}

// Watched is a read with the watch it left.
type Watched[T any] struct {
	Value T
	Stat  *zk.Stat
	Watch <-chan zk.Event
}

// GetW reads path and watches it.
func (c Client) GetW(ctx context.Context, path string) (Watched[[]byte], error) {
	return Call(ctx, c, func(z *zk.Conn) (Watched[[]byte], error) {
		data, st, w, err := z.GetW(path)
		return Watched[[]byte]{data, st, w}, err
	})
}

// Exists reports whether path exists, with its stat.
func (c Client) Exists(ctx context.Context, path string) (bool, *zk.Stat, error) {
	type got struct {
		ok bool
		st *zk.Stat
	}
	g, err := Call(ctx, c, func(z *zk.Conn) (got, error) {
		ok, st, err := z.Exists(path)
		return got{ok, st}, err
	})
	return g.ok, g.st, err
}

// ExistsW is Exists that watches path (its creation, if it does not exist).
func (c Client) ExistsW(ctx context.Context, path string) (Watched[bool], error) {
	return Call(ctx, c, func(z *zk.Conn) (Watched[bool], error) {
		ok, st, w, err := z.ExistsW(path)
		return Watched[bool]{ok, st, w}, err
	})
}

// Children lists path's children.
func (c Client) Children(ctx context.Context, path string) ([]string, error) {
	return Call(ctx, c, func(z *zk.Conn) ([]string, error) {
		ch, _, err := z.Children(path)
		return ch, err
	})
}

// ChildrenW lists path's children and watches the list.
func (c Client) ChildrenW(ctx context.Context, path string) (Watched[[]string], error) {
	return Call(ctx, c, func(z *zk.Conn) (Watched[[]string], error) {
		ch, st, w, err := z.ChildrenW(path)
		return Watched[[]string]{ch, st, w}, err
	})
}

// Multi applies ops atomically.
func (c Client) Multi(ctx context.Context, ops ...any) ([]zk.MultiResponse, error) {
	return Call(ctx, c, func(z *zk.Conn) ([]zk.MultiResponse, error) { return z.Multi(ops...) })
}

// Sync makes the session's server catch up with the leader on path.
func (c Client) Sync(ctx context.Context, path string) error {
	_, err := Call(ctx, c, func(z *zk.Conn) (string, error) { return z.Sync(path) })
	return err
}

// CreatePath creates full with data and flags after its missing
// ancestors (empty, with parentFlags: zk.FlagPersistent or
// zk.FlagContainer), all with acl: the one "create this path and its
// parents" of every recipe. It returns zk.ErrNodeExists if full exists
// (ancestors may exist). before, if not nil, runs right before each create
// of full and stops it with its error. An ancestor container the server
// reaps between our creates makes it start over, a few times.
func (c Client) CreatePath(ctx context.Context, full string, data []byte, flags, parentFlags int32, acl []zk.ACL, before func() error) error {
	mk := func(p string, data []byte, flags int32) error {
		if p == full && before != nil {
			if err := before(); err != nil {
				return err
			}
		}
		_, err := Call(ctx, c, func(z *zk.Conn) (string, error) {
			if flags&zk.FlagContainer != 0 {
				return z.CreateContainer(p, data, flags, acl)
			}
			return z.Create(p, data, flags, acl)
		})
		return err
	}
	err := mk(full, data, flags)
	for try := 0; errors.Is(err, zk.ErrNoNode) && try < 5; try++ {
		err = nil
		for i := 1; i < len(full) && err == nil; i++ {
			if full[i] == '/' {
				if err = mk(full[:i], nil, parentFlags); errors.Is(err, zk.ErrNodeExists) {
					err = nil
				}
			}
		}
		if err == nil {
			err = mk(full, data, flags)
		}
	}
	return err
}

// WatchOf returns the watch of a watched read, for callers that need only
// the watch: WatchOf(c.GetW(ctx, path)).
func WatchOf[T any](w Watched[T], err error) (<-chan zk.Event, error) { return w.Watch, err }
