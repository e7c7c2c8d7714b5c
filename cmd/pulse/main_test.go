package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: run must
// join everything it starts, and the tests must close what they open.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
