package fleet

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

// Memory is the part of a Go process's memory that grows with the
// connections it holds: heap in use, goroutine stacks, goroutines and the
// resident set.
type Memory struct {
	Heap, Stack, Goroutines, RSS uint64
}

// SelfMemory measures this process (with the fleet in a child, the
// server's) after collecting and returning freed memory to the system.
func SelfMemory() Memory {
	runtime.GC()
	runtime.GC() // the second empties the sync.Pools' victim caches too
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Memory{Heap: ms.HeapInuse, Stack: ms.StackInuse, Goroutines: uint64(runtime.NumGoroutine()), RSS: residentBytes()}
}

// residentBytes is this process's resident set (VmRSS), or 0 where
// /proc/self/statm cannot be read.
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, resident uint64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		return 0
	}
	return resident * uint64(os.Getpagesize())
}
