#!/usr/bin/env bash
# Installs what the browser tests (test/browser) need: Debian's chromium,
# only when /usr/bin/chromium is absent. Run as root (CI runs as root).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y chromium
