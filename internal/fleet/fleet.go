package fleet

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Lines of the protocol every fleet speaks; its other lines are its own.
const (
	lineReady   = "ready"
	lineDone    = "done"
	lineUnknown = "unknown"
	maxLine     = 1 << 20 // the longest line a fleet may write
)

// Fleet is the parent's end of a fleet.
type Fleet struct {
	// Set at start, never changes.
	tb    testing.TB
	name  string
	in    io.WriteCloser // the fleet's input; closed by Stop
	pid   int            // the child process, or 0 in process
	lines chan string    // the fleet's lines; closed when its output ends

	// Written by the output's reader; read only after lines closes.
	output strings.Builder

	// Owned by the test's goroutine.
	stopped bool // the input is closed and the lines drained
}

// Child is a fleet to run in a child process.
type Child struct {
	Name string // the fleet's name, which starts each of its lines
	Test string // the Test function that becomes the fleet, e.g. "TestClientFleet"
	Env  string // the variable that makes it the fleet, as "NAME=VALUE"
}

// Start starts c, this test binary again running only c.Test, and waits
// until the fleet is ready. When the test ends a fleet that Stop has not
// stopped (after a failure) is killed; either way the child is waited for,
// and a child that failed fails the test.
func Start(tb testing.TB, c Child) *Fleet {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+c.Test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), c.Env)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("%s fleet: %v", c.Name, err)
	}
	f := newFleet(tb, c.Name, in, out, cmd.Process.Pid)
	tb.Cleanup(func() { f.endChild(cmd) })
	f.awaitReady()
	return f
}

// endChild kills the child unless it was stopped, and waits for it.
func (f *Fleet) endChild(cmd *exec.Cmd) {
	if !f.stopped {
		cmd.Process.Kill() // an error means it has ended already
		f.drain()
		cmd.Wait() // killed: its status says nothing
		return
	}
	if err := cmd.Wait(); err != nil {
		f.tb.Errorf("%s fleet: %v\n%s", f.name, err, f.output.String())
	}
}

// StartInProcess runs the fleet run in a goroutine of this process and
// waits until it is ready. run speaks the protocol on in and out (with
// Serve) until in ends. When the test ends the fleet is stopped if it was
// not, and an error of run fails the test. Its CPU time is unknown.
func StartInProcess(tb testing.TB, name string, run func(in io.Reader, out io.Writer) error) *Fleet {
	tb.Helper()
	inReader, in := io.Pipe()
	out, outWriter := io.Pipe()
	ran := make(chan error, 1)
	go func() {
		err := run(inReader, outWriter)
		inReader.Close() // the parent's writes fail rather than block
		outWriter.CloseWithError(err)
		ran <- err
	}()
	f := newFleet(tb, name, in, out, 0)
	tb.Cleanup(func() {
		if !f.stopped {
			f.in.Close()
			f.drain()
		}
		if err := <-ran; err != nil {
			tb.Errorf("%s fleet: %v", name, err)
		}
	})
	f.awaitReady()
	return f
}

// newFleet starts reading the fleet's output out.
func newFleet(tb testing.TB, name string, in io.WriteCloser, out io.Reader, pid int) *Fleet {
	f := &Fleet{tb: tb, name: name, in: in, pid: pid, lines: make(chan string, 16)}
	go f.read(out)
	return f
}

// read sorts the fleet's output into its lines and the others, until the
// output ends.
func (f *Fleet) read(out io.Reader) {
	defer close(f.lines)
	sc := bufio.NewScanner(out)
	sc.Buffer(nil, maxLine)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, f.name+": ") {
			f.lines <- line
		} else {
			f.output.WriteString(line + "\n")
		}
	}
	io.Copy(io.Discard, out) // a line too long: let the fleet end anyway
}

func (f *Fleet) awaitReady() {
	f.tb.Helper()
	f.next(lineReady)
}

// Ask sends command, "VERB ARGS...", and returns the result of the answer,
// failing the test if the fleet answers anything else.
func (f *Fleet) Ask(command string) string {
	f.tb.Helper()
	verb, _, _ := strings.Cut(command, " ")
	fmt.Fprintln(f.in, command) // a fleet that has ended shows in next
	return f.next(verb)
}

// Stop closes the fleet's input and returns the result of its done line.
func (f *Fleet) Stop() string {
	f.tb.Helper()
	f.stopped = true
	f.in.Close()
	defer f.drain()
	return f.next(lineDone)
}

// next returns the result of the fleet's next line, which must be verb's.
func (f *Fleet) next(verb string) string {
	f.tb.Helper()
	line, ok := <-f.lines
	if !ok {
		f.stopped = true
		f.tb.Fatalf("%s fleet ended; want its %q line\n%s", f.name, verb, f.output.String())
	}
	want := f.name + ": " + verb
	result, found := strings.CutPrefix(line, want+" ")
	if !found && line != want {
		f.tb.Fatalf("%s fleet said %q, want %q", f.name, line, want)
	}
	return result
}

// drain discards the fleet's lines until its output ends.
func (f *Fleet) drain() {
	for range f.lines {
	}
}
