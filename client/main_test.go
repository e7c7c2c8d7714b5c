package client

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: Run must
// join everything it starts.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
