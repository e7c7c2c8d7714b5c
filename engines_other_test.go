//go:build !linux

package pulse

// engines are the engines every socket-level test runs on.
var engines = []Engine{EngineStd}

// engineOf is the engine that drives c.
func engineOf(*Conn) Engine { return EngineStd }
