package main

import "github.com/pulse-go/pulse"

// echo is the handler behind /echo: every message goes back to its sender
// unchanged, text as text and binary as binary.
var echo = pulse.Funcs{
	Receive: func(c *pulse.Conn, m pulse.Message) {
		_ = c.Send(m) // a failed Send has closed c
	},
}
