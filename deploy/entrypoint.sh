#!/bin/sh
# pullcred's node installer, the DaemonSet's container (deploy/): installs pullcred onto the
# node whose root filesystem is mounted at /host, with the same install.sh and flavour
# detection as a bootstrap script, from the config its ConfigMap mounts at
# /config/config.toml; installs again whenever that file changes; and keeps running. Every
# file install.sh writes is logged. It needs only those two mounts: no API server, no
# nsenter.
#
#   PULLCRED_MODE            install (default) or uninstall (undo on this node, then idle)
#   PULLCRED_FLAVOR          the node's flavour (eks, kubeadm, k3s, rke2, systemd); default:
#                            detected from the node's files
#   PULLCRED_BIN_DIR         the kubelet's credential provider bin dir, if not the flavour's
#   PULLCRED_KUBELET_VERSION the node's kubelet version, if its kubelet binary cannot say
#   PULLCRED_CHECK_FILES     true: install only once every secret file the config names is
#                            on the node, as install.sh checks them (retried each poll).
#                            Default: not checked (install.sh --no-files), since secrets
#                            often reach nodes after the installer; `pullcred doctor` on a
#                            node checks them
#   PULLCRED_FORCE           true: install.sh --force (replace a config or kubelet file an
#                            operator wrote or changed, keeping a .bak); default: such a node
#                            is left as it is and the log says why
#   PULLCRED_RESTART_KUBELET true: when this pod's first install changed the node, signal
#                            the kubelet (its service manager starts it again; needs
#                            hostPID). Once per pod start, so the DaemonSet's rolling update
#                            (maxUnavailable 1) paces restarts across nodes. Default: never.
#   PULLCRED_KUBELET_PROCESS the process to signal (default kubelet; k3s, rke2-agent, ...)
#   PULLCRED_POLL_SECONDS    how often the config is looked at (default 10)
#   PULLCRED_HOST, PULLCRED_CONFIG_FILE, PULLCRED_ONCE   the mounts, and one pass only (tests)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bins=$(cd "$here/../../libexec/kubelet-credential-providers" && pwd)
host=${PULLCRED_HOST:-/host}
config=${PULLCRED_CONFIG_FILE:-/config/config.toml}
mode=${PULLCRED_MODE:-install}
poll=${PULLCRED_POLL_SECONDS:-10}
once=${PULLCRED_ONCE:-false}
work=$(mktemp -d)

log() {
  echo "pullcred-node-installer: $*"
}

case $mode in install | uninstall) ;; *)
  log "PULLCRED_MODE=$mode is not install or uninstall"
  exit 2 ;;
esac
[ -d "$host" ] || { log "no host root at $host (mount the node's / there)"; exit 2; }

idle() {
  [ "$once" = true ] && exit 0
  while :; do sleep 3600; done
}

if [ "$mode" = uninstall ]; then
  DESTDIR=$host sh "$here/uninstall.sh"
  log "uninstalled; the DaemonSet can be deleted"
  idle
fi

# The config as mounted (a ConfigMap's file is a link into its current version), copied so
# the installer reads one version of it.
snapshot() {
  if [ -f "$config" ]; then cat "$config" > "$work/config.toml"; else : > "$work/config.toml"; fi
  sha256sum "$work/config.toml" | cut -d' ' -f1
}

install_once() {
  set -- --binary "$bins/pullcred"
  [ -n "${PULLCRED_FLAVOR:-}" ] && set -- "$@" --flavor "$PULLCRED_FLAVOR"
  [ -n "${PULLCRED_BIN_DIR:-}" ] && set -- "$@" --bin-dir "$PULLCRED_BIN_DIR"
  [ -n "${PULLCRED_KUBELET_VERSION:-}" ] && set -- "$@" --kubelet-version "$PULLCRED_KUBELET_VERSION"
  [ -s "$work/config.toml" ] && set -- "$@" --config "$work/config.toml"
  [ "${PULLCRED_CHECK_FILES:-false}" = true ] || set -- "$@" --no-files
  [ "${PULLCRED_FORCE:-false}" != true ] || set -- "$@" --force
  DESTDIR=$host sh "$here/install.sh" "$@" > "$work/out" 2>&1
}

# The service's process: its executable named `name`, root's, started by init (PPid 1),
# so that neither a process that merely calls itself so nor a `k3s kubectl` is signalled.
restart_kubelet() {
  name=${PULLCRED_KUBELET_PROCESS:-kubelet}
  for dir in /proc/[0-9]*; do
    exe=$(readlink "$dir/exe" 2>/dev/null || true)
    [ "${exe##*/}" = "$name" ] || continue
    grep -q "^PPid:[[:space:]]*1$" "$dir/status" 2>/dev/null || continue
    grep -q "^Uid:[[:space:]]*0[[:space:]]" "$dir/status" 2>/dev/null || continue
    log "restarting $name (pid ${dir#/proc/}, $exe) for the new wiring"
    kill -TERM "${dir#/proc/}" || true
    return 0
  done
  log "no $name service process to restart (hostPID?); the kubelet reads the wiring at its next start"
}

last=""
first=true
while :; do
  now=$(snapshot)
  if [ "$now" != "$last" ]; then
    if install_once; then
      sed 's/^/  /' "$work/out"
      log "installed (config $now)"
      if [ "$first" = true ] && [ "${PULLCRED_RESTART_KUBELET:-false}" = true ] && grep -q '^wrote ' "$work/out"; then
        restart_kubelet
      fi
      last=$now
      first=false
    else
      sed 's/^/  /' "$work/out"
      log "install failed; trying again in ${poll}s"
      [ "$once" = true ] && exit 1
    fi
  fi
  [ "$once" = true ] && exit 0
  sleep "$poll"
done
