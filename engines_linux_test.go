package pulse

// engines are the engines every socket-level test runs on.
var engines = []Engine{EngineStd, EngineEpoll}

// engineOf is the engine that drives c.
func engineOf(c *Conn) Engine {
	if _, ok := c.t.(*pollConn); ok {
		return EngineEpoll
	}
	return EngineStd
}
