#!/usr/bin/env bash
# Starts a throwaway image registry on 127.0.0.1:5055 (Debian's docker-registry package),
# for the test that pulls the sandbox image. Docker trusts registries on loopback without
# TLS. Does nothing when one already answers there.
set -euo pipefail
addr="${AIRLOCK_TEST_REGISTRY:-127.0.0.1:5055}"

if curl -fsS "http://$addr/v2/" >/dev/null 2>&1; then
    exit 0
fi
if ! command -v docker-registry >/dev/null 2>&1; then
    echo "docker-registry is missing: apt-get install docker-registry" >&2
    exit 1
fi
dir=$(mktemp -d /tmp/airlock-registry.XXXXXX)
cat > "$dir/config.yml" <<CONFIG
version: 0.1
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $addr
CONFIG
nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
for _ in $(seq 1 50); do
    curl -fsS "http://$addr/v2/" >/dev/null 2>&1 && exit 0
    sleep 0.2
done
cat "$dir/registry.log" >&2
echo "the test registry did not start on $addr" >&2
exit 1
