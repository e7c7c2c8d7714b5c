//go:build unix

package fleet

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// counterEnv, set to a number N, makes TestCounterFleet the child: a fleet
// named "counter" whose "add K" answers the sum so far, starting at N.
const counterEnv = "PULSE_FLEET_TEST_COUNTER"

// runCounter is the counter fleet: "add K" answers the sum, done is it too.
func runCounter(start int, in io.Reader, out io.Writer) error {
	sum := start
	answer := func(verb, args string) (string, bool) {
		k, err := strconv.Atoi(args)
		if verb != "add" || err != nil {
			return "", false
		}
		sum += k
		return strconv.Itoa(sum), true
	}
	return Serve("counter", in, out, answer, func() string { return "total " + strconv.Itoa(sum) })
}

// TestCounterFleet is the counter fleet when counterEnv is set; otherwise
// it runs the counter in a child and checks the protocol and the CPU time.
func TestCounterFleet(t *testing.T) {
	if spec := os.Getenv(counterEnv); spec != "" {
		n, err := strconv.Atoi(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := runCounter(n, os.Stdin, os.Stdout); err != nil {
			t.Fatal(err)
		}
		return
	}
	f := Start(t, Child{Name: "counter", Test: "TestCounterFleet", Env: counterEnv + "=10"})
	checkCounter(t, f, 10)
	if d, err := f.CPUTime(); err != nil || d < 0 {
		t.Errorf("CPUTime of the child = %v, %v; want a time", d, err)
	}
}

// TestInProcess runs the counter in process.
func TestInProcess(t *testing.T) {
	f := StartInProcess(t, "counter", func(in io.Reader, out io.Writer) error { return runCounter(5, in, out) })
	checkCounter(t, f, 5)
	if _, err := f.CPUTime(); err == nil {
		t.Error("CPUTime in process: no error")
	}
}

// checkCounter asks f two sums and stops it.
func checkCounter(t *testing.T, f *Fleet, start int) {
	t.Helper()
	if got, want := f.Ask("add 2"), strconv.Itoa(start+2); got != want {
		t.Errorf("add 2 = %q, want %q", got, want)
	}
	if got, want := f.Ask("add 3"), strconv.Itoa(start+5); got != want {
		t.Errorf("add 3 = %q, want %q", got, want)
	}
	if got, want := f.Stop(), "total "+strconv.Itoa(start+5); got != want {
		t.Errorf("done line %q, want %q", got, want)
	}
}

// TestServeUnknownVerb checks that a verb the fleet does not know gets an
// answer, so that the parent fails rather than waits.
func TestServeUnknownVerb(t *testing.T) {
	var out strings.Builder
	err := runCounter(0, strings.NewReader("add 1\nmultiply 2\nadd x\n"), &out)
	want := "counter: ready\ncounter: add 1\ncounter: unknown multiply\ncounter: unknown add\ncounter: done total 1\n"
	if err != nil || out.String() != want {
		t.Errorf("output %q, %v; want %q", out.String(), err, want)
	}
}

// failFatal records Fatalf and ends the goroutine as testing.T does.
type failFatal struct {
	testing.TB
	failure string
}

func (f *failFatal) Helper() {}

func (f *failFatal) Fatalf(format string, args ...any) {
	f.failure = format
	panic(errFatal)
}

var errFatal = errors.New("fatal")

// TestAskWrongAnswer checks that an answer of another verb fails the test.
func TestAskWrongAnswer(t *testing.T) {
	f := StartInProcess(t, "counter", func(in io.Reader, out io.Writer) error { return runCounter(0, in, out) })
	tb := &failFatal{TB: t}
	f.tb = tb
	func() {
		defer func() {
			if r := recover(); r != errFatal {
				t.Errorf("Ask of an unknown verb did not fail: recovered %v", r)
			}
		}()
		f.Ask("multiply 2")
	}()
	if !strings.Contains(tb.failure, "said") {
		t.Errorf("failure %q, want the line the fleet said", tb.failure)
	}
	f.tb = t
}
