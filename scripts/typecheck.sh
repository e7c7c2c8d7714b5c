#!/usr/bin/env bash
# Type-checks web/static/pulse.js (// @ts-check, JSDoc types) with the
# TypeScript compiler. TypeScript is installed from the npm registry into a
# cache outside the repository on first use (PULSE_CACHE, default
# ~/.cache/pulse), and reused after: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

version=5.9.3
cache="${PULSE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/pulse}/typescript-$version"
tsc="$cache/node_modules/.bin/tsc"
if [ ! -x "$tsc" ]; then
	mkdir -p "$cache"
	npm install --no-save --no-audit --no-fund --no-package-lock --prefix "$cache" "typescript@$version" >&2
fi
"$tsc" --checkJs --noEmit --strict --target es2022 --lib es2022,dom web/static/pulse.js
