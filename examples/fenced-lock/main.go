// Command fenced-lock is the smallest complete use of zkrecipes: take a
// lock, do fenced work with its token, and give the lock back.
//
//	ZK_SERVERS=zk1:2181,zk2:2181 go run ./examples/fenced-lock
//
// Without ZK_SERVERS it starts a throwaway local server (zktest.Launch;
// needs Debian's zookeeper package or ZOOKEEPER_HOME). The resource here
// is an in-process fence.Memory; a real service would use fence.Postgres or
// check the token in its own storage.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/zkrecipes/zkrecipes/fence"
	"github.com/zkrecipes/zkrecipes/lock"
	"github.com/zkrecipes/zkrecipes/recipes"
	"github.com/zkrecipes/zkrecipes/zktest"
)

func main() {
	servers := strings.Split(os.Getenv("ZK_SERVERS"), ",")
	if servers[0] == "" {
		zkc, err := zktest.Launch(zktest.Config{})
		if err != nil {
			log.Fatal(err)
		}
		defer zkc.Stop()
		servers = zkc.Addrs()
	}
	if err := run(servers); err != nil {
		log.Fatal(err)
	}
}

func run(servers []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess, err := recipes.Connect(ctx, servers, recipes.WithSessionTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer sess.Close()

	var account fence.Memory // remembers the largest token it accepted
	balance := 0
	for i := 0; i < 3; i++ {
		l, err := lock.NewMutex(sess, "/examples/accounts/42").Acquire(ctx)
		if err != nil {
			return err
		}
		// The write is applied only if no newer holder has written since.
		err = account.Do("account-42", l.Token(), func() error {
			balance += 10
			return nil
		})
		fmt.Printf("holder %d: token %v, write error %v, balance %d\n", i, l.Token(), err, balance)
		if err := l.Release(ctx); err != nil {
			return err
		}
	}
	// A holder whose lease is long gone comes back with its old token:
	stale := recipes.Token(1)
	err = account.Do("account-42", stale, func() error { balance = 0; return nil })
	fmt.Printf("stale holder: token %v, write error %v, balance %d\n", stale, err, balance)
	return nil
}
