package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/zkrecipes/zkrecipes/zktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	if err := run(zktest.Start(t).Addrs()); err != nil {
		t.Fatal(err)
	}
}
