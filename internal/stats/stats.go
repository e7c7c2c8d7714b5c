// Package stats holds counters that package pulse keeps for its own tests
// and for those of the packages built on it (the hub's fan-out test counts
// compressions). They are not part of any public API.
package stats

import "sync/atomic"

// Deflates counts the messages package pulse has compressed.
var Deflates atomic.Int64
