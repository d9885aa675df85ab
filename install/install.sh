#!/usr/bin/env bash
# Installs pullcred on a node and wires it into the kubelet.
#   install/install.sh [--binary PATH] [--bin-dir DIR] [--provider-config FILE] [--match PATTERN]...
# Writes the kubelet's CredentialProviderConfig (unless it exists) and prints the two kubelet
# flags; on systemd/kubeadm nodes it also adds them through a drop-in and restarts nothing.
set -euo pipefail

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
((${#patterns[@]})) || patterns=("*.dkr.ecr.*.amazonaws.com" "*.dkr.ecr-fips.*.amazonaws.com" "*.dkr.ecr.*.amazonaws.com.cn" "*.dkr-ecr.*.on.aws" "public.ecr.aws" "ecr-public.aws.com" "*.pkg.dev" "gcr.io" "*.gcr.io" "*.azurecr.io")

[ -x "$binary" ] || { echo "install.sh: no executable at $binary (cargo build --release first)" >&2; exit 1; }
install -d -m 0755 "$bin_dir"
install -m 0755 "$binary" "$bin_dir/pullcred"
install -d -m 0700 /etc/pullcred /etc/pullcred/secrets

if [ ! -e "$provider_config" ]; then
  install -d -m 0755 "$(dirname "$provider_config")"
  {
    echo "apiVersion: kubelet.config.k8s.io/v1"
    echo "kind: CredentialProviderConfig"
    echo "providers:"
    echo "  - name: pullcred"
    echo "    apiVersion: credentialprovider.kubelet.k8s.io/v1"
    echo "    defaultCacheDuration: \"5m\""
    echo "    matchImages:"
    for p in "${patterns[@]}"; do echo "      - \"$p\""; done
  } > "$provider_config"
fi

flags="--image-credential-provider-config=$provider_config --image-credential-provider-bin-dir=$bin_dir"
dropin=/etc/systemd/system/kubelet.service.d
if [ -d "$dropin" ]; then
  printf '[Service]\nEnvironment="KUBELET_EXTRA_ARGS=%s"\n' "$flags" > "$dropin/20-pullcred.conf"
  echo "wrote $dropin/20-pullcred.conf; run: systemctl daemon-reload && systemctl restart kubelet"
else
  echo "add these kubelet flags: $flags"
fi
