#!/usr/bin/env bash
# Runs pullcred's whole test suite, first installing the test peers that are missing:
# Debian's docker-registry (distribution), skopeo, umoci, htpasswd (apache2-utils) and strace.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool_pkg in docker-registry:docker-registry skopeo:skopeo umoci:umoci htpasswd:apache2-utils strace:strace; do
  command -v "${tool_pkg%%:*}" >/dev/null 2>&1 || missing+=("${tool_pkg#*:}")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "tests/run.sh: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

exec cargo test --locked --features test-clock "$@"
