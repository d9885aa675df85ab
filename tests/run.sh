#!/usr/bin/env bash
# Runs pullcred's whole test suite, first installing the test peers that are missing:
# Debian's docker-registry (distribution), skopeo, umoci, busybox-static (the node-installer
# image's shell), htpasswd (apache2-utils), strace, shellcheck, rpm and
# the NSS module libnss-myhostname (the resolution tests prove it is never loaded), and moto
# (in server mode: the AWS peer for ECR and STS) and prometheus_client (its text-format parser
# checks the metrics textfile) from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool_pkg in docker-registry:docker-registry skopeo:skopeo umoci:umoci busybox:busybox-static htpasswd:apache2-utils strace:strace shellcheck:shellcheck rpm:rpm; do
  command -v "${tool_pkg%%:*}" >/dev/null 2>&1 || missing+=("${tool_pkg#*:}")
done
ls /lib/*/libnss_myhostname.so.2 /usr/lib/*/libnss_myhostname.so.2 >/dev/null 2>&1 ||
  missing+=(libnss-myhostname)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "tests/run.sh: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# pip's scripts dir may not be on PATH (e.g. a user install); the tests exec moto_server.
scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
export PATH="$PATH:$scripts:$HOME/.local/bin"
if ! command -v moto_server >/dev/null 2>&1; then
  echo "tests/run.sh: installing moto[server]" >&2
  python3 -m pip install -q 'moto[server]>=5.1,<6'
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi
# Prometheus' own text-format parser, which the metrics textfile must satisfy.
if ! python3 -c 'import prometheus_client.parser' 2>/dev/null; then
  echo "tests/run.sh: installing prometheus_client" >&2
  python3 -m pip install -q 'prometheus_client>=0.20,<1'
fi

# The release binaries, which the release test packages (cargo xtask dist --no-build): built
# here, once, because the tests' own cargo holds the build dir's lock while they run.
cargo build --release --locked
exec cargo test --locked "$@"
