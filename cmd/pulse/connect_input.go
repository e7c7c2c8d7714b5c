package main

import "time"

// Lines read before the first welcome are held, not run: until then the
// console does not know whether the endpoint speaks pulse.v1, and if it
// does not, the plain WebSocket mode sends them instead. At most --queue
// lines are held; the input is not read further until the verdict.

// loop reads lines until the input ends, /quit, or Run returns; ran
// reports whether it received Run's result.
func (k *console) loop(in *lines, runDone <-chan error) (err error, ran bool) {
	ready := k.ready
	var input <-chan string = in.c
	for {
		select {
		case line, ok := <-input:
			switch {
			case ok && ready != nil:
				if k.hold(line, &input) {
					return k.ending(true, runDone)
				}
			case !ok || k.command(line):
				return k.ending(ready != nil, runDone)
			}
		case <-ready:
			ready, input = nil, in.c
			if k.runHeld() {
				return nil, false
			}
		case err := <-runDone:
			return err, true
		case <-k.runCtx.Done():
			return nil, false
		}
	}
}

// hold keeps a line read before the first welcome; a full hold stops the
// reading of input. It reports true for /quit.
func (k *console) hold(line string, input *<-chan string) bool {
	if line == "/state" { // a question, not an action: answered at once
		k.command(line)
		return false
	}
	if len(k.held) == 0 && k.p.interactive {
		k.p.status("not connected yet: lines wait for the first connection")
	}
	k.held = append(k.held, line)
	if len(k.held) >= k.cfg.queue {
		*input = nil
	}
	return line == "/quit"
}

// runHeld runs the held lines in order; it reports true for /quit.
func (k *console) runHeld() bool {
	held := k.held
	k.held = nil
	for _, line := range held {
		if k.command(line) {
			return true
		}
	}
	return false
}

// ending is the end of the input (or /quit). Before the first welcome it
// waits for it up to --handshake-timeout + --wait and runs the held
// lines; lines still held after that are reported as not sent.
func (k *console) ending(unready bool, runDone <-chan error) (err error, ran bool) {
	if !unready || len(k.held) == 0 {
		return nil, false
	}
	bound := time.NewTimer(k.cfg.handshake + k.cfg.wait)
	defer bound.Stop()
	select {
	case <-k.ready:
		k.runHeld()
	case err := <-runDone:
		return err, true
	case <-k.runCtx.Done():
	case <-bound.C:
	}
	return nil, false
}
