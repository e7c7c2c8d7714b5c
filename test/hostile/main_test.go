//go:build linux

package hostile

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind, and
// removes the pulse binary the tests built.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(cleaningM{m})
}

// cleaningM runs the tests, then removes what pulseBinary built.
type cleaningM struct{ m *testing.M }

func (c cleaningM) Run() int {
	code := c.m.Run()
	if pulseBin != "" {
		os.RemoveAll(filepath.Dir(pulseBin))
	}
	return code
}
