// Package hostile holds no code: its tests attack a real pulse serve
// (the binary, built by the test) while well-behaved clients keep
// measuring round trips, and check that the server stays up, that the
// bystanders' p99 stays within a bound, that the server's open files and
// goroutines return to their calm level, and that the attacker gets the
// answer SECURITY.md documents. Each case is bounded in size and time so
// that it runs in CI; the figures are logged (go test -v).
package hostile
