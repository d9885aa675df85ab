#!/usr/bin/env bash
# Installs pullcred on a node and wires it into the kubelet.
#   install/install.sh [--binary PATH] [--bin-dir DIR] [--provider-config FILE] [--match PATTERN]...
# Writes the kubelet's CredentialProviderConfig (unless it exists) and adds the two kubelet
# flags where the kubelet reads them, else prints them; it restarts nothing. DESTDIR installs
# into another root (image builds, tests).
#
# matchImages default to exactly the hosts pullcred's rules serve (`pullcred config
# match-images`: /etc/pullcred/config.toml, else the built-in rules), so the kubelet never
# routes a pull to a rule that does not exist.
set -euo pipefail

root=${DESTDIR:-}
binary=target/x86_64-unknown-linux-gnu/release/pullcred
bin_dir=/usr/local/libexec/kubelet-credential-providers
provider_config=/etc/kubernetes/credential-provider-config.yaml
patterns=()
while (($#)); do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --provider-config) provider_config=$2; shift 2 ;;
    --match) patterns+=("$2"); shift 2 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

[ -x "$binary" ] || { echo "install.sh: no executable at $binary (cargo build --release first)" >&2; exit 1; }
if ((${#patterns[@]} == 0)); then
  config_args=()
  [ -e "$root/etc/pullcred/config.toml" ] && config_args=(--config "$root/etc/pullcred/config.toml")
  mapfile -t patterns < <("$binary" "${config_args[@]}" config match-images)
  ((${#patterns[@]})) || { echo "install.sh: the pullcred config has no rules to route" >&2; exit 1; }
fi

install -d -m 0755 "$root$bin_dir"
install -m 0755 "$binary" "$root$bin_dir/pullcred"
install -d -m 0700 "$root/etc/pullcred" "$root/etc/pullcred/secrets"

if [ ! -e "$root$provider_config" ]; then
  install -d -m 0755 "$(dirname "$root$provider_config")"
  {
    echo "apiVersion: kubelet.config.k8s.io/v1"
    echo "kind: CredentialProviderConfig"
    echo "providers:"
    echo "  - name: pullcred"
    echo "    apiVersion: credentialprovider.kubelet.k8s.io/v1"
    echo "    defaultCacheDuration: \"5m\""
    echo "    matchImages:"
    for p in "${patterns[@]}"; do echo "      - \"$p\""; done
  } > "$root$provider_config"
  echo "wrote $provider_config"
fi

flags="--image-credential-provider-config=$provider_config --image-credential-provider-bin-dir=$bin_dir"
dropin=/etc/systemd/system/kubelet.service.d
# kubeadm's unit reads KUBELET_EXTRA_ARGS from an EnvironmentFile, and a variable from an
# EnvironmentFile wins over a drop-in's Environment=: the flags go into that file then.
env_file=""
for f in /etc/default/kubelet /etc/sysconfig/kubelet; do
  if [ -f "$root$f" ] || grep -qsE "^EnvironmentFile=-?$f\$" "$root$dropin"/*.conf "$root"/{lib,usr/lib,etc}/systemd/system/kubelet.service; then
    env_file=$f
    break
  fi
done
if [ -n "$env_file" ]; then
  target=$root$env_file
  touch "$target"
  if grep -q -- '--image-credential-provider-config=' "$target"; then
    echo "$env_file already has the credential provider flags"
  elif grep -q '^KUBELET_EXTRA_ARGS=' "$target"; then
    sed -i -E \
      -e "s|^KUBELET_EXTRA_ARGS=\"(.*)\"\$|KUBELET_EXTRA_ARGS=\"\\1 $flags\"|" \
      -e "s|^KUBELET_EXTRA_ARGS='(.*)'\$|KUBELET_EXTRA_ARGS='\\1 $flags'|" \
      -e "s|^KUBELET_EXTRA_ARGS=([^\"'].*)\$|KUBELET_EXTRA_ARGS=\"\\1 $flags\"|" \
      -e "s|^KUBELET_EXTRA_ARGS=\$|KUBELET_EXTRA_ARGS=\"$flags\"|" \
      "$target"
    echo "added the flags to KUBELET_EXTRA_ARGS in $env_file; run: systemctl restart kubelet"
  else
    printf 'KUBELET_EXTRA_ARGS="%s"\n' "$flags" >> "$target"
    echo "set KUBELET_EXTRA_ARGS in $env_file; run: systemctl restart kubelet"
  fi
elif [ -d "$root$dropin" ]; then
  printf '[Service]\nEnvironment="KUBELET_EXTRA_ARGS=%s"\n' "$flags" > "$root$dropin/20-pullcred.conf"
  echo "wrote $dropin/20-pullcred.conf; run: systemctl daemon-reload && systemctl restart kubelet"
else
  echo "add these kubelet flags: $flags"
fi
