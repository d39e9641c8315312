// Package election will provide leader election on ZooKeeper with
// session-expiry-driven failover and fencing tokens (see issue 3). It is
// empty in this release: use lock.Mutex on a well-known path, and the
// lease's token, for single-leader work meanwhile.
package election
