#!/usr/bin/env bash
# Runs every test of pulse on a fresh machine: installs Chromium and
# TypeScript when they are missing, and redis-server, then vet, the Go tests
# under the race detector (each package behind a goroutine-leak gate, fuzz
# seeds included, the Redis tests against their own redis-server
# processes), the browser tests in headless Chromium (their own module,
# test/browser, so chromedp is no dependency of the library), the type
# check of pulse.js, then the Node tests against the real pulse binary.
set -euo pipefail
cd "$(dirname "$0")/.."

# Node.js 20 or newer is needed for its WebSocket (behind a flag in 20).
if ! command -v node >/dev/null || [ "$(node -p 'parseInt(process.versions.node)')" -lt 20 ]; then
	echo "test.sh: Node.js >= 20 is required for test/node (found: $(node --version 2>/dev/null || echo none))" >&2
	exit 1
fi

echo "== browser dependencies"
./scripts/browser-deps.sh

echo "== redis dependencies"
./scripts/redis-deps.sh

echo "== go vet"
go vet ./...
(cd test/browser && go vet ./...)

echo "== go test -race"
# The multi-node and hostile-client suites load the machine on purpose;
# they run after the others, one at a time, so that the timing tests of
# the liveness rule do not share the two cores with an attack.
heavy='/test/(cluster|hostile)$'
go test -race -count=1 $(go list ./... | grep -Ev "$heavy")
# The hub's suite over real sockets runs again on the epoll engine (the
# root package's socket tests run on both engines by themselves).
PULSE_TEST_ENGINE=epoll go test -race -count=1 ./hub/
go test -race -count=1 ./test/cluster
go test -race -count=1 ./test/hostile

echo "== browser tests (test/browser)"
(cd test/browser && go test -race -count=1 ./...)

echo "== type check of pulse.js"
./scripts/typecheck.sh

echo "== node tests"
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/pulse" ./cmd/pulse
PULSE_BIN="$bin/pulse" node --experimental-websocket --test test/node/
