#!/usr/bin/env bash
# Installs what the Redis broker's tests (redisbroker, test/cluster) need:
# Debian's redis-server, only when it is absent. Run as root (CI runs as
# root). The tests start their own redis-server processes on free ports,
# without persistence; they fail, never skip, when it is missing.
set -euo pipefail
if command -v redis-server >/dev/null; then
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y redis-server
