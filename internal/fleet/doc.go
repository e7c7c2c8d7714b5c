// Package fleet runs a benchmark's clients, a fleet, in a child process:
// the test binary itself, started again to run one Test function, which
// becomes the fleet because an environment variable is set. The
// benchmark's process then holds only the server, so the memory and CPU it
// measures are the server's. The same fleet can run in process, for a test
// of the fleet itself.
//
// Use Start in a benchmark, StartInProcess in a test, and Serve in the
// fleet. Fleet's methods belong to the test's goroutine.
//
// # Protocol
//
// The parent and the fleet speak lines. Every line the fleet writes starts
// with its name and a colon; its other lines (the test binary's own) are
// kept for a failure message. The fleet writes "NAME: ready" once its
// clients are up. The parent writes commands, "VERB ARGS...", one a line;
// the fleet answers each with "NAME: VERB RESULT...", or "NAME: unknown
// VERB". When its input ends the fleet stops its clients, writes "NAME:
// done RESULT..." and ends. What a verb means and what a result holds is
// the fleet's own.
package fleet
