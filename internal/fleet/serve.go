package fleet

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Serve is the fleet's end of the protocol, once its clients are up: it
// writes name's ready line to out, answers each command of in with the
// result of answer(verb, args) until in ends, and then writes the result
// of stop, which stops the clients, as its done line. A verb answer does
// not know (ok false) gets the unknown line. Serve returns the first
// error reading in.
func Serve(name string, in io.Reader, out io.Writer, answer func(verb, args string) (result string, ok bool), stop func() string) error {
	fmt.Fprintf(out, "%s: %s\n", name, lineReady)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		verb, args, _ := strings.Cut(sc.Text(), " ")
		if result, ok := answer(verb, args); ok {
			fmt.Fprintf(out, "%s: %s %s\n", name, verb, result)
		} else {
			fmt.Fprintf(out, "%s: %s %s\n", name, lineUnknown, verb)
		}
	}
	fmt.Fprintf(out, "%s: %s %s\n", name, lineDone, stop())
	return sc.Err()
}
