//go:build race

package verify

func init() { raceOn = true }
