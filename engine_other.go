//go:build !linux

package pulse

import "net"

// Without epoll, EngineEpoll is refused by NewServer and these are never used.

const epollEngine = false

type poller struct{}

func (s *Server) serveEpoll(net.Conn, handshake, Session) bool { return false }
func (s *Server) stopPoller()                                  {}
