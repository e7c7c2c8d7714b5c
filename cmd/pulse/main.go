// Command pulse runs and debugs WebSocket connections held to pulse's
// liveness rule.
//
//	pulse serve [flags]        serve /ws, /echo, /metrics, /healthz, pulse.js and the demos
//	pulse connect [flags] URL  an interactive client: state, RTT, reconnects, subscribe and publish
//	pulse bench SCENARIO URL   load-test a server: idle, upgrades, latency, fanout, storm
//	pulse chaos [flags]        a TCP fault proxy driven by an HTTP control endpoint
//	pulse version              the version of the binary
//
// Run "pulse help" for the list of commands and "pulse CMD --help" for the
// flags of one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// A second signal during the drain kills the process at once.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pulse:", err)
		os.Exit(1)
	}
}

// command is one subcommand of the binary. Its run parses its own flags
// from args (the arguments after its name) and returns once its work and
// every goroutine it started have ended.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists the subcommands in the order "pulse help" shows them.
var commands = []command{
	{name: "serve", summary: "serve WebSocket connections with heartbeats, metrics and graceful drain", run: serve},
	{name: "connect", summary: "an interactive client: state, RTT, reconnects; subscribe and publish from the prompt", run: connect},
	{name: "bench", summary: "load-test a server: idle, upgrades, latency, fanout, reconnect storm", run: runBench},
	{name: "chaos", summary: "a TCP fault proxy: blackhole, delay, throttle or cut connections on command", run: runChaos},
	{name: "version", summary: "print the version of this binary", run: version},
}

// version is "pulse version": the module version the binary was built
// from ("devel" for a build from a work tree) and the Go version.
func version(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	v := "devel"
	info, ok := debug.ReadBuildInfo()
	if ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	fmt.Fprintf(stdout, "pulse %s %s\n", v, runtime.Version())
	return nil
}

// run dispatches args (without the program name) to a command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("no command given; known commands: %s", commandNames())
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		printUsage(stdout)
		return nil
	}
	for _, cmd := range commands {
		if cmd.name == name {
			err := cmd.run(ctx, args[1:], stdout, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return nil // the help asked for has been printed
			}
			return err
		}
	}
	return fmt.Errorf("unknown command %q; known commands: %s", name, commandNames())
}

// printUsage lists the commands.
func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: pulse <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "pulse <command> --help" for the flags of a command.`)
}

func commandNames() string {
	names := make([]string, len(commands))
	for i, cmd := range commands {
		names[i] = cmd.name
	}
	return strings.Join(names, ", ")
}

// parseFlags parses args into fs. operands names the arguments the
// command takes after its flags, for the usage line; fs.Args() may hold at
// most that many. Help is printed to stdout and reported as flag.ErrHelp;
// any other problem comes back as an error naming the command, without the
// usage text, which "--help" shows.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer, operands ...string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stdout, "Usage: pulse %s\n\nFlags:\n", strings.Join(append([]string{fs.Name(), "[flags]"}, operands...), " "))
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return flag.ErrHelp
	case err != nil:
		return fmt.Errorf("%s: %w (see pulse %s --help)", fs.Name(), err, fs.Name())
	case fs.NArg() > len(operands):
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(len(operands)))
	}
	return nil
}
