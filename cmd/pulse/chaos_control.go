package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/pulse-go/pulse/chaos"
)

const chaosHelp = `pulse chaos control endpoint. Every fault applies to all links, and to
links accepted later, unless link=CLIENT_ADDR names one (see GET /links).

GET  /links                          open links, as JSON
POST /blackhole?dir=both|up|down     silent partition: nothing read, nothing written, no FIN, no RST
POST /heal                           undo blackhole, delay and limit; held bytes flow, in order
POST /delay?d=200ms                  hold every chunk for d; d=0 removes
POST /limit?rate=64k&dir=both|up|down  bandwidth limit in bytes/s (k, m suffixes); rate=0 removes
POST /cut                            reset every open link (RST both ways)
POST /close                          close every open link in order (FIN both ways)
`

const chaosKeysHelp = `keys (then Enter): b blackhole both, u blackhole upstream, d blackhole downstream,
h heal, l add 100ms latency, s limit to 8 KiB/s, c cut (reset), x close (FIN), ? help, q quit`

func (c *chaosControl) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, chaosHelp) })
	mux.HandleFunc("GET /links", c.links)
	mux.HandleFunc("POST /{verb}", c.command)
	return mux
}

func (c *chaosControl) links(w http.ResponseWriter, _ *http.Request) {
	type link struct {
		Client string `json:"client"`
	}
	out := []link{}
	for _, l := range c.proxy.Links() {
		out = append(out, link{Client: l.ClientAddr()})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// command parses a POST into a fault and applies it.
func (c *chaosControl) command(w http.ResponseWriter, r *http.Request) {
	f, err := parseFault(r)
	if err == nil {
		var done string
		done, err = c.apply(f)
		if err == nil {
			fmt.Fprintln(w, "ok:", done)
			return
		}
	}
	status := http.StatusBadRequest
	if errors.Is(err, errNoLink) {
		status = http.StatusNotFound
	}
	http.Error(w, err.Error(), status)
}

func parseFault(r *http.Request) (fault, error) {
	q := r.URL.Query()
	f := fault{verb: r.PathValue("verb"), link: q.Get("link")}
	var err error
	switch f.verb {
	case "blackhole", "limit":
		f.dir, err = parseDirection(q.Get("dir"))
	}
	switch {
	case err != nil:
	case f.verb == "delay":
		f.delay, err = time.ParseDuration(q.Get("d"))
	case f.verb == "limit":
		f.rate, err = parseRate(q.Get("rate"))
	}
	return f, err
}

// keys applies one-letter commands read from stdin until ctx ends; q
// calls quit.
func (c *chaosControl) keys(ctx context.Context, in *lines, quit func(), stdout io.Writer) {
	var latency time.Duration
	for {
		var line string
		select {
		case <-ctx.Done():
			return
		case l, ok := <-in.c:
			if !ok {
				return
			}
			line = l
		}
		f, ok := keyFault(line, &latency)
		switch {
		case line == "q":
			quit()
			return
		case !ok:
			fmt.Fprintln(stdout, chaosKeysHelp)
		default:
			if _, err := c.apply(f); err != nil {
				fmt.Fprintln(stdout, err)
			}
		}
	}
}

// keyFault maps a key to its fault; l adds 100ms to latency each time.
func keyFault(key string, latency *time.Duration) (fault, bool) {
	switch key {
	case "b":
		return fault{verb: "blackhole", dir: chaos.DirectionBoth}, true
	case "u":
		return fault{verb: "blackhole", dir: chaos.DirectionUpstream}, true
	case "d":
		return fault{verb: "blackhole", dir: chaos.DirectionDownstream}, true
	case "h":
		*latency = 0
		return fault{verb: "heal"}, true
	case "l":
		*latency += 100 * time.Millisecond
		return fault{verb: "delay", delay: *latency}, true
	case "s":
		return fault{verb: "limit", dir: chaos.DirectionBoth, rate: 8 << 10}, true
	case "c":
		return fault{verb: "cut"}, true
	case "x":
		return fault{verb: "close"}, true
	}
	return fault{}, false
}
