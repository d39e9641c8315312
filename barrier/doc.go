// Package barrier will provide ZooKeeper barriers and double barriers for
// coordinated batch work (see issue 7). It is empty in this release.
package barrier
