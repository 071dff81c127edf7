#!/bin/sh
# Starts a loopback-only storage unit with the built-in coordinator from
# examples/quickstart, and prints how to point a turku-agent at it.
# Stop it with Ctrl-C; everything it writes is under /tmp/turku-storage-quickstart.
set -eu
cd "$(dirname "$0")/.."
bin=./turku-storage
[ -x "$bin" ] || go build -o "$bin" ./cmd/turku-storage
base=/tmp/turku-storage-quickstart
mkdir -p "$base/var" "$base/lock" "$base/volume"
"$bin" -c examples/quickstart config check >/dev/null

cat <<TXT
turku-storage quickstart: SSH on 127.0.0.1:2222, built-in coordinator on
http://127.0.0.1:8410/v1, data under $base.

Point a turku-agent on this host at it with /etc/turku-agent/config.d/10-api.json:

    {
        "api_url": "http://127.0.0.1:8410/v1",
        "api_auth_name": "Machine Registrations",
        "api_auth_secret": "quickstart-registration-secret",
        "rsyncd_local_address": "127.0.0.2"
    }

then: turku-update-config          (registers the machine and its sources)
      $bin -c examples/quickstart sources run-now MACHINE SOURCE
      turku-agent-ping             (backs the source up)
      $bin -c examples/quickstart logs
      $bin -c examples/quickstart snapshots MACHINE

TXT
exec "$bin" -c examples/quickstart serve
