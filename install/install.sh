#!/bin/sh
# Installs pullcred on a node and wires it into the kubelet, for the node's flavour:
#   kubeadm   KUBELET_EXTRA_ARGS in /etc/default/kubelet or /etc/sysconfig/kubelet
#   systemd   a kubelet.service drop-in setting KUBELET_EXTRA_ARGS
#   eks       EKS AL2023 (nodeadm): the binaries in /etc/eks/image-credential-provider, the
#             provider config in a file of pullcred's own (nodeadm rewrites its config.json
#             at every boot): pullcred's providers, then nodeadm's ECR provider unless
#             pullcred's rules route every ECR host it names; the flags in a NodeConfig in
#             /etc/eks/nodeadm.d
#   k3s, rke2 kubelet-arg entries in /etc/rancher/{k3s,rke2}/config.yaml.d
#   bottlerocket, unknown: prints what to set, writes nothing, exits 1 (0 with --print-only)
#
#   install/install.sh [--flavor F] [--binary PATH] [--config FILE | --example NAME]
#                      [--secret NAME=FILE]... [--no-files] [--drop-overlapping]
#                      [--prefix DIR] [--bin-dir DIR] [--provider-config FILE]
#                      [--kubelet-version X.Y]
#                      [--dry-run] [--force] [--restart] [--print-only]
#
# The provider config carries exactly the fields the node's kubelet has (1.33 has no
# cacheType, say): its version is --kubelet-version, else what the flavour's own kubelet
# binary prints for --version (/usr/bin/kubelet; k3s, RKE2: theirs), and only one of root's
# that no one else may write, never one found on PATH; else the newest, with a note.
#
# It installs the binaries (and the front again as docker-credential-pullcred, for node
# tools) and writes /etc/pullcred/config.toml (0600) from --config or config-examples/NAME
# (with the example's *.password demo files beside it), replacing one the operator wrote
# only with --force; each --secret FILE as /etc/pullcred/secrets/NAME (root's, 0600; the
# operator's to rotate: another --secret replaces it without --force); the kubelet's
# CredentialProviderConfig from `pullcred kubelet-config` (an existing one is merged: its
# other providers and the fields set on pullcred's are kept); and the two kubelet flags.
# Every file it writes is printed, and recorded in /var/lib/pullcred/install/manifest with
# its checksum as soon as it is written, so that a run that fails midway is undone by
# install/uninstall.sh or finished by running again, a second run changes nothing, a file
# an operator changed since is never replaced without --force (which keeps a .bak), and
# install/uninstall.sh undoes exactly this. It restarts nothing unless --restart. DESTDIR
# installs into another root (image builds, tests). The flavour is detected from the
# root's files unless --flavor says.
#
# --drop-overlapping leaves out of the kubelet config every other provider whose images
# overlap pullcred's, so that pullcred alone answers for them. It is needed where a rule's
# identity is "service-account": the kubelet asks every provider that matches an image and
# tries every credential, so another provider (EKS's ECR provider) would give every pod the
# node's. Without it, such an overlap is reported, as `pullcred doctor` fails it.
#
# Before writing anything it checks the config the node will use with `pullcred config
# check`, reading each secret file its rules name where the node will (under DESTDIR; a
# --secret's FILE for its NAME): a missing or unsafe one stops the install. --no-files
# checks the config alone, for image builds whose secrets come later. The config and
# secrets are checked as the root-owned copies it stages, so a file of the operator's own
# account installs.
#
# It runs as root, so it checks everything before it writes anything, and refuses: a
# symlink, FIFO or other non-regular file where it would write (the .bak included); a
# directory on the way that a user other than root owns or may write; a --bin-dir or
# --provider-config that is not a clean absolute path (no . or .., only letters, digits,
# space and / . _ + @ , = -), or that has a space where the kubelet's flags are split at
# whitespace (kubeadm, systemd, EKS). Each file is staged beside its target and renamed
# over it, so the kubelet never execs a missing or half-written binary. --dry-run shows each
# file's new content (a diff for a file that exists; a binary by size and checksum; a
# secret by name and mode alone).
set -eu
LC_ALL=C
export LC_ALL

here=$(cd "$(dirname "$0")" && pwd)
root=${DESTDIR:-}
flavor=""
binary=""
config_src=""
example=""
prefix=/usr/local
bin_dir=""
provider_config=""
kubelet_version=""
dry_run=0
force=0
restart=0
print_only=0
no_files=0
drop_overlapping=0
secrets=""

die() {
  echo "install.sh: $1" >&2
  exit "${2:-1}"
}

# Dies unless PATH (under the root) is a regular file or absent: nothing is read, written or
# backed up through a symlink (another user's link to a file of root's), and no FIFO or
# device is opened.
regular_or_absent() {
  if [ -L "$root$1" ]; then
    die "$1 is a symbolic link: the installer never reads or writes through one; remove it and run again"
  elif [ -e "$root$1" ] && [ ! -f "$root$1" ]; then
    die "$1 is not a regular file; remove it and run again"
  fi
}

while [ $# -gt 0 ]; do
  case $1 in
    --flavor | --flavour) flavor=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --config) config_src=$2; shift 2 ;;
    --example) example=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --provider-config) provider_config=$2; shift 2 ;;
    --kubelet-version) kubelet_version=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --force) force=1; shift ;;
    --restart) restart=1; shift ;;
    --print-only) print_only=1; shift ;;
    --no-files) no_files=1; shift ;;
    --drop-overlapping) drop_overlapping=1; shift ;;
    --secret)
      name=${2%%=*}
      case $2 in *=?*) ;; *) die "--secret $2: not NAME=FILE" 2 ;; esac
      case $name in
        "" | .* | *[!A-Za-z0-9._-]*) die "--secret $2: $name is not a plain file name (letters, digits, . _ -, not starting with .)" 2 ;;
      esac
      case "
$secrets" in *"
$name="*) die "--secret $name is given twice" 2 ;; esac
      [ -f "${2#*=}" ] || die "--secret $2: ${2#*=} is not a regular file" 2
      secrets="$secrets$2
"
      shift 2 ;;
    -h | --help) sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1" 2 ;;
  esac
done

# The binaries and examples are where each way of shipping puts them: beside this script
# (the release archive), in the packages' directories (this script in /usr/share/pullcred),
# or in a source tree (install/ beside target/ and config-examples/).
if [ -z "$binary" ]; then
  for b in "$here/pullcred" "$here/../../libexec/kubelet-credential-providers/pullcred" \
    "$here/../target/x86_64-unknown-linux-gnu/release/pullcred"; do
    if [ -x "$b" ]; then binary=$b; break; fi
  done
fi
if [ -n "$example" ]; then
  for d in "$here/config-examples" "$here/../doc/pullcred/examples" "$here/../config-examples"; do
    config_src=$d/$example/config.toml
    if [ -f "$config_src" ]; then break; fi
  done
fi
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
  die "no pullcred binary (cargo build --release, or --binary PATH)"
fi
# The front binary answers cache hits and hands the rest to pullcred-mint, which must be
# installed beside it.
mint_binary=$(dirname "$binary")/pullcred-mint
[ -x "$mint_binary" ] || die "no pullcred-mint beside $binary (both are built and installed together)"
if [ -n "$config_src" ] && [ ! -f "$config_src" ]; then die "no config at $config_src"; fi

kubelet_unit_dirs="etc/systemd/system lib/systemd/system usr/lib/systemd/system"

detect() {
  if [ -f "$root/etc/os-release" ] && grep -q '^ID=bottlerocket' "$root/etc/os-release"; then
    echo bottlerocket
  elif [ -d "$root/etc/eks/nodeadm.d" ] || [ -x "$root/usr/bin/nodeadm" ]; then
    echo eks
  elif [ -d "$root/etc/rancher/rke2" ]; then
    echo rke2
  elif [ -d "$root/etc/rancher/k3s" ]; then
    echo k3s
  else
    for d in $kubelet_unit_dirs; do
      if [ -f "$root/$d/kubelet.service.d/10-kubeadm.conf" ]; then echo kubeadm; return; fi
    done
    for d in $kubelet_unit_dirs; do
      if [ -f "$root/$d/kubelet.service" ] || [ -d "$root/$d/kubelet.service.d" ]; then
        echo systemd
        return
      fi
    done
    echo unknown
  fi
}
[ -n "$flavor" ] || flavor=$(detect)

case $flavor in
  kubeadm | systemd)
    default_bin_dir=$prefix/libexec/kubelet-credential-providers
    default_provider_config=/etc/kubernetes/credential-provider-config.yaml
    service=kubelet ;;
  eks)
    default_bin_dir=/etc/eks/image-credential-provider
    default_provider_config=/etc/pullcred/kubelet-credential-providers.json
    service=kubelet ;;
  k3s | rke2)
    default_bin_dir=/var/lib/rancher/credentialprovider/bin
    default_provider_config=/var/lib/rancher/credentialprovider/config.yaml
    if [ "$flavor" = k3s ]; then service="k3s (servers) or k3s-agent (agents)"
    else service="rke2-server (servers) or rke2-agent (agents)"; fi ;;
  bottlerocket | unknown)
    default_bin_dir=$prefix/libexec/kubelet-credential-providers
    default_provider_config=/etc/kubernetes/credential-provider-config.yaml
    service="" ;;
  *) die "unknown flavor $flavor (kubeadm, systemd, eks, k3s, rke2, bottlerocket, unknown)" 2 ;;
esac
[ -n "$bin_dir" ] || bin_dir=$default_bin_dir
[ -n "$provider_config" ] || provider_config=$default_provider_config

# A clean absolute path: no empty, . or .. component (which could leave DESTDIR), no
# trailing slash, and only characters that every file carrying the kubelet's flags holds as
# they are (no quotes, $, %, |, backslash, :, # or newline).
clean_path() {
  case $1 in
    /*) ;;
    *) return 1 ;;
  esac
  case $1 in
    */ | *//* | */./* | */. | */../* | */..) return 1 ;;
    *[!A-Za-z0-9/._+@,=\ -]*) return 1 ;;
  esac
}
for option in "--bin-dir $bin_dir" "--provider-config $provider_config"; do
  path=${option#* }
  clean_path "$path" ||
    die "$option: not a clean absolute path (letters, digits, space and / . _ + @ , = - only; no . or .. components)" 2
  case $flavor:$path in
    kubeadm:*" "* | systemd:*" "* | eks:*" "*)
      die "$option: the kubelet gets its flags on a $flavor node in one environment variable, split at whitespace; choose a path without spaces" 2 ;;
  esac
done
# nodeadm writes its provider config whenever it configures the node: pullcred's own file
# carries its ECR provider instead.
nodeadm_config=/etc/eks/image-credential-provider/config.json
if [ "$flavor" = eks ] && [ "$provider_config" = "$nodeadm_config" ]; then
  die "--provider-config $nodeadm_config: nodeadm rewrites it at every boot, dropping pullcred's providers; leave the default (a file of pullcred's own that carries nodeadm's ECR provider too)" 2
fi
flags="--image-credential-provider-config=$provider_config --image-credential-provider-bin-dir=$bin_dir"

# The node's kubelet version: from the flavour's own kubelet binary unless named.
kubelet_version_from="--kubelet-version"
if [ -z "$kubelet_version" ]; then
  kubelet_version_from=""
  case $flavor in
    k3s) candidates="/usr/local/bin/k3s /usr/bin/k3s" ;;
    rke2) candidates="/var/lib/rancher/rke2/bin/kubelet" ;;
    *) candidates="/usr/bin/kubelet /usr/local/bin/kubelet" ;;
  esac
  for b in $candidates; do
    p=$root$b
    if [ -f "$p" ] && [ ! -L "$p" ] && [ -x "$p" ] &&
      [ -z "$(find "$p" -prune \( ! -user 0 -o -perm -0002 -o -perm -0020 \) -print)" ]; then
      v=$(timeout 5 "$p" --version < /dev/null 2> /dev/null | tr ' ' '\n' |
        sed -n 's/^v\(1\.[0-9][0-9]*\)\..*/\1/p' | head -n 1) || v=""
      if [ -n "$v" ]; then
        kubelet_version=$v
        kubelet_version_from="$b --version"
        break
      fi
    fi
  done
fi
if [ -n "$kubelet_version" ]; then
  echo "install.sh: writing for the kubelet of Kubernetes $kubelet_version ($kubelet_version_from)"
else
  echo "install.sh: the kubelet's version is unknown (no kubelet binary of root's answered --version): writing for the newest pullcred knows; name it with --kubelet-version X.Y" >&2
fi

work=$(mktemp -d)
staged=""
trap 'rm -rf "$work"; if [ -n "$staged" ]; then rm -f "$staged"; fi' EXIT
pullcred_config=/etc/pullcred/config.toml
secrets_dir=/etc/pullcred/secrets

# The config and secrets as this run's own copies (root's, 0600): what is checked is what is
# installed, whoever owned the operator's files. An example's *.password files are demo
# secrets its config names beside itself; they go beside the installed config.
stage=$work/stage
mkdir -m 0700 "$stage" "$stage/secrets"
beside=""
if [ -n "$config_src" ]; then
  cat "$config_src" > "$stage/config.toml"
  chmod 0600 "$stage/config.toml"
  if [ -n "$example" ]; then
    for f in "$(dirname "$config_src")"/*.password; do
      [ -f "$f" ] || continue
      cat "$f" > "$stage/${f##*/}"
      chmod 0600 "$stage/${f##*/}"
      beside="$beside${f##*/}
"
    done
  fi
  config_src=$stage/config.toml
  # A file the config names beside itself is read where the installed config will find
  # it, in the node's /etc/pullcred: linked from the stage, so that the check follows the
  # link and judges the node's file (its owner, mode and every directory on the way).
  case $root in
    "" | /*)
      for f in "$root/etc/pullcred"/*; do
        n=${f##*/}
        case $n in config.toml | secrets) continue ;; esac
        if [ -e "$f" ] && [ ! -e "$stage/$n" ] && [ ! -L "$stage/$n" ]; then
          ln -s "$f" "$stage/$n"
        fi
      done ;;
  esac
fi
while IFS= read -r s; do
  [ -n "$s" ] || continue
  cat "${s#*=}" > "$stage/secrets/${s%%=*}"
  chmod 0600 "$stage/secrets/${s%%=*}"
done <<EOF
$secrets
EOF

# The routing the config needs: the config being installed, else the node's, else the
# built-in rules; merged into $merge when set.
if [ -n "$config_src" ]; then gen_src=$config_src
elif regular_or_absent "$pullcred_config" && [ -f "$root$pullcred_config" ]; then
  gen_src=$root$pullcred_config
else gen_src=""; fi
merge=""
kubelet_config() {
  set --
  if [ -n "$gen_src" ]; then set -- "$gen_src"; fi
  if [ -n "$kubelet_version" ]; then set -- "$@" --kubelet-version "$kubelet_version"; fi
  if [ -n "$merge" ]; then set -- "$@" --merge "$merge"; fi
  if [ -n "$merge" ] && [ "$flavor" = eks ]; then set -- "$@" --drop-covered; fi
  if [ -n "$merge" ] && [ "$drop_overlapping" = 1 ]; then set -- "$@" --drop-overlapping; fi
  "$binary" kubelet-config "$@"
}

if [ "$flavor" = bottlerocket ] || [ "$flavor" = unknown ]; then
  if [ "$flavor" = unknown ]; then
    echo "install.sh: no flavour recognised under ${root:-/}: looked for /etc/os-release (ID=bottlerocket), /etc/eks/nodeadm.d or /usr/bin/nodeadm (eks), /etc/rancher/rke2 or /etc/rancher/k3s, kubelet.service.d/10-kubeadm.conf (kubeadm) and kubelet.service (systemd) under /etc/systemd/system, /lib/systemd/system and /usr/lib/systemd/system; name one with --flavor"
  fi
  echo "install.sh: $flavor node: nothing written. Set up the kubelet yourself:"
  echo "  the binary:        $bin_dir/pullcred (from $binary)"
  echo "  the kubelet flags: $flags"
  if [ "$flavor" = bottlerocket ]; then
    echo "  Bottlerocket: settings.kubernetes.credential-providers.pullcred in the user data"
    echo "  (enabled = true, image-patterns = the matchImages below); the binary comes with"
    echo "  the variant or a bootstrap container."
  fi
  echo "  $provider_config:"
  kubelet_config | sed 's/^/    /'
  [ "$print_only" = 1 ] && exit 0
  exit 1
fi

state=/var/lib/pullcred/install
manifest=$root$state/manifest
new_manifest=$work/manifest
uid=$(id -u)

# The config the node will use, checked as a mint would read it, before anything is
# written: its secret files under the root, a --secret's staged copy for its name.
if [ -n "$gen_src" ]; then
  set -- config check
  if [ "$no_files" = 1 ]; then
    set -- "$@" --no-files
  else
    set -- "$@" --root "${root:-/}"
    for f in "$stage/secrets"/*; do
      [ ! -f "$f" ] || set -- "$@" --secret "${f##*/}=$f"
    done
  fi
  if ! "$binary" "$@" "$gen_src" > "$work/check.out" 2> "$work/check.err"; then
    # The staged copies by the names the node will have, the root's files by the node's.
    names="s|$stage/secrets/|$secrets_dir/|g; s|$stage/|/etc/pullcred/|g"
    if [ -n "$root" ]; then names="$names; s|$root/|/|g"; fi
    grep '^error: ' "$work/check.out" | sed "$names" >&2 || true
    sed "$names" "$work/check.err" >&2
    die "the config does not check (pullcred config check; --no-files checks the config alone): nothing was written"
  fi
fi

sum() { sha256sum < "$1" | cut -d' ' -f1; }

# Dies unless only root can change the directory DIR (under the root): it and each directory
# above it, up to the root, that exists is root's (or the installer's user's) and writable by
# no other user; a symlink among them is root's and so is its target. Otherwise another user
# could swap a name in it between this check and the write.
checked_dirs="
"
trusted_dir() {
  d=$1
  while :; do
    case $checked_dirs in *"
$d
"*) return 0 ;; esac
    p=$root$d
    if [ -e "$p" ] || [ -L "$p" ]; then
      if [ -n "$(find "$p" -prune ! -user 0 ! -user "$uid" -print)" ] ||
        [ -n "$(find -H "$p" -prune \( ! -user 0 ! -user "$uid" -o -perm -0002 -o \( -perm -0020 ! -group 0 \) \) -print)" ]; then
        die "$d can be changed by a user other than root (it is theirs, or group or others may write it): nothing is installed under it; chown root and chmod go-w it"
      fi
    fi
    checked_dirs="$checked_dirs$d
"
    [ "$d" != / ] || return 0
    d=$(dirname "$d")
  done
}

# Saves the manifest as it stands: this run's lines so far, and an earlier run's for the
# paths this run has not reached yet. Called as each file is written, so that a run that
# stops midway leaves every file it wrote on record, for uninstall.sh or a re-run.
save_manifest() {
  [ "$pass" = apply ] && [ "$dry_run" = 0 ] || return 0
  [ -d "$root$state" ] || ensure_dir "$state" 0700
  merged_manifest
  replace "$state/manifest" 0600 "$work/manifest.now"
}

# The manifest as it stands, in $work/manifest.now: this run's lines, and an earlier run's
# for every path this run did not write (a secret installed before is still pullcred's).
merged_manifest() {
  : > "$work/manifest.old"
  if [ -f "$manifest" ]; then cat "$manifest" > "$work/manifest.old"; fi
  awk '
    { key = ($1 == "bin-dir" || $1 == "provider-config") ? $0 : substr($0, length($1) + length($2) + 3) }
    NR == FNR { seen[key] = 1; print; next }
    !(key in seen) { print }
  ' "$new_manifest" "$work/manifest.old" | sort -u > "$work/manifest.now"
}

# The manifest's record of PATH: "<kind> <sum>", or nothing. A line is "<kind> <sum> <path>",
# the path being the rest of the line (it may hold spaces).
recorded() {
  [ -f "$manifest" ] || return 0
  P=$1 awk '($1 == "file" || $1 == "modified" || $1 == "secret") && substr($0, length($1) + length($2) + 3) == ENVIRON["P"] { print $1, $2 }' "$manifest"
}

# Creates DIR (under the root) and the parents it lacks, recording each as ours.
ensure_dir() {
  [ "$pass" != check ] || return 0
  d=$1
  missing=""
  while [ ! -d "$root$d" ] && [ "$d" != / ] && [ "$d" != . ]; do
    missing="$d
$missing"
    d=$(dirname "$d")
  done
  while IFS= read -r m; do
    [ -n "$m" ] || continue
    # mkdir -m, not install -d: BusyBox (the node-installer image's) has no install.
    if [ "$dry_run" = 0 ]; then
      mkdir -m "${2:-0755}" "$root$m"
    fi
    printf 'dir - %s\n' "$m" >> "$new_manifest"
  done <<EOF
$missing
EOF
}

# Writes the content of NEW at PATH (under the root) with MODE: staged in PATH's own
# directory, then renamed over PATH, so that a reader (the kubelet exec'ing a binary) finds
# the old file or the new one, never a missing or half-written one, and a hard link at PATH
# is replaced, never written through.
replace() {
  staged=$(mktemp "$root$(dirname "$1")/.pullcred.XXXXXX")
  cat "$3" > "$staged"
  chmod "$2" "$staged"
  mv -f "$staged" "$root$1"
  staged=""
}

# Keeps the file at PATH (under the root) as PATH.bak, the same way: a copy staged beside it
# and renamed over whatever regular file is there.
backup() {
  regular_or_absent "$1.bak"
  [ "$pass" != check ] || return 0
  if [ "$dry_run" = 1 ]; then
    echo "would keep the changed $1 as $1.bak"
  else
    staged=$(mktemp "$root$1.bak.XXXXXX")
    cp -p "$root$1" "$staged"
    mv -f "$staged" "$root$1.bak"
    staged=""
    echo "kept the changed $1 as $1.bak"
  fi
}

# The original of a file pullcred modified (saved at the first install), or the file as it
# is now if pullcred has not touched it; empty if there is none.
original() {
  regular_or_absent "$1"
  regular_or_absent "$state/orig$1"
  if [ -f "$root$state/orig$1" ]; then cat "$root$state/orig$1"
  elif [ -f "$root$1" ] && [ -z "$(recorded "$1")" ]; then cat "$root$1"
  fi
}

# What a dry run shows of NEW for PATH (MODE, SHOW): a text file's content, or its diff
# against the file there now; a binary by size and checksum; a secret (SHOW "secret", or a
# file there now that others may not read) by name and mode alone, never its content.
preview() {
  path=$1 mode=$2 new=$3 show=$4
  target=$root$path
  what="new file"
  if [ -e "$target" ]; then
    what=changed
    [ -n "$(find "$target" -prune -perm -0004)" ] || show=secret
  fi
  case $show in
    secret) echo "would write $path ($what, mode $mode): a secret, content not shown" ;;
    binary) echo "would write $path ($what, mode $mode): binary, $(wc -c < "$new" | tr -d ' ') bytes, sha256 $(sum "$new")" ;;
    *)
      echo "would write $path ($what, mode $mode):"
      if [ -e "$target" ]; then
        echo "    --- $path"
        echo "    +++ $path (new)"
        diff -u "$target" "$new" | sed -e '1,2d' -e 's/^/    /'
      else
        sed 's/^/    /' "$new"
      fi ;;
  esac
}

# put PATH MODE NEW HOW SHOW: installs NEW at PATH. HOW: "whole" (a file of pullcred's own),
# "merge" (NEW was made from the file's original, which is kept for uninstall), "keep" (an
# existing file that is not pullcred's is left alone). SHOW, for a dry run: "text",
# "binary" or "secret". In the check pass it only refuses what the apply pass would.
put() {
  path=$1 mode=$2 new=$3 how=$4 show=$5
  target=$root$path
  regular_or_absent "$path"
  trusted_dir "$(dirname "$path")"
  rec=$(recorded "$path")
  kind="file"
  [ "$how" != secret ] || kind=secret
  if [ -e "$target" ]; then
    if [ -n "$rec" ]; then
      kind=${rec% *}
      if [ "$(sum "$target")" != "${rec#* }" ]; then
        case $how in
          # A secret it installed is the operator's to rotate in place; a --secret given
          # again is the new value. Neither is a conflict, and no copy of it is kept.
          secret) ;;
          *)
            [ "$force" = 1 ] || die "$path was changed since pullcred installed it; --force replaces it (keeping $path.bak)"
            backup "$path" ;;
        esac
      fi
    else
      case $how in
        keep)
          [ "$pass" = check ] || echo "kept $path (not pullcred's)"
          return ;;
        whole | secret)
          [ "$force" = 1 ] || die "$path exists and is not pullcred's; --force replaces it (keeping $path.bak)"
          backup "$path" ;;
      esac
      kind=modified
      regular_or_absent "$state/orig$path"
      if [ "$pass" = apply ] && [ "$dry_run" = 0 ] && [ ! -f "$root$state/orig$path" ]; then
        ensure_dir "$(dirname "$state/orig$path")" 0700
        cp -p "$target" "$root$state/orig$path"
      fi
    fi
  else
    ensure_dir "$(dirname "$path")"
  fi
  [ "$pass" != check ] || return 0
  printf '%s %s %s\n' "$kind" "$(sum "$new")" "$path" >> "$new_manifest"
  if [ -e "$target" ] && cmp -s "$new" "$target"; then
    echo "unchanged $path"
  elif [ "$dry_run" = 1 ]; then
    preview "$path" "$mode" "$new" "$show"
  else
    replace "$path" "$mode" "$new"
    save_manifest
    echo "wrote $path"
  fi
}

# Everything the install writes, in order. Run twice: a check pass that refuses whatever it
# would refuse before a single file is written, then the pass that writes (or, with
# --dry-run, shows).
steps() {
  printf 'bin-dir - %s\nprovider-config - %s\n' "$bin_dir" "$provider_config" > "$new_manifest"

  # 1. The binaries: the front, and the minting binary it hands misses to.
  put "$bin_dir/pullcred" 0755 "$binary" whole binary
  put "$bin_dir/pullcred-mint" 0755 "$mint_binary" whole binary
  # The front again under the docker credential helper's name, for node tools (crictl,
  # skopeo, podman, pre-pull scripts; docs/release.md): it answers as the helper by the name
  # it is run under. A copy, not a link: the installer writes regular files only.
  put "$bin_dir/docker-credential-pullcred" 0755 "$binary" whole binary

  # 2. pullcred's config, unless the node has one.
  trusted_dir /etc/pullcred
  ensure_dir /etc/pullcred 0700
  # Where the examples keep secret files: root's alone, made here so that
  # `install -m 0600 -o root /dev/stdin /etc/pullcred/secrets/NAME` works on a fresh node.
  trusted_dir /etc/pullcred/secrets
  ensure_dir /etc/pullcred/secrets 0700
  if [ -n "$config_src" ]; then
    # The config asked for, or nothing: one the operator wrote there is replaced only with
    # --force, never silently kept while another is checked and routed.
    put "$pullcred_config" 0600 "$config_src" whole secret
  elif [ -n "$(recorded "$pullcred_config")" ]; then
    put "$pullcred_config" 0600 "$root$pullcred_config" keep secret
  fi
  while IFS= read -r f; do
    [ -z "$f" ] || put "/etc/pullcred/$f" 0600 "$stage/$f" secret secret
  done <<EOF
$beside
EOF
  for f in "$stage/secrets"/*; do
    [ ! -f "$f" ] || put "$secrets_dir/${f##*/}" 0600 "$f" secret secret
  done

  # 3. The kubelet's CredentialProviderConfig, merged into the original if there was one.
  # On EKS, a file of pullcred's own: pullcred's providers, then those of nodeadm's file
  # (as nodeadm wrote it), less any that pullcred's providers route wholly.
  merge=""
  if [ "$flavor" = eks ]; then
    trusted_dir "$(dirname "$nodeadm_config")"
    original "$nodeadm_config" > "$work/provider.orig"
    how=whole
  else
    # The file as it is now, when there is one: a merge replaces only what pullcred
    # generates, so what an operator set since (a proxy in a provider's env, a provider of
    # their own) is kept. The original, kept at the first install, is for uninstall.sh.
    regular_or_absent "$provider_config"
    if [ -f "$root$provider_config" ]; then
      cat "$root$provider_config" > "$work/provider.orig"
    else
      original "$provider_config" > "$work/provider.orig"
    fi
    how=merge
  fi
  if [ -s "$work/provider.orig" ]; then
    case $provider_config in
      *.json) merge=$work/provider.json ;;
      *) merge=$work/provider.yaml ;;
    esac
    cp "$work/provider.orig" "$merge"
  fi
  if [ "$flavor" = eks ] && [ ! -s "$work/provider.orig" ] && [ "$pass" = check ]; then
    echo "install.sh: no $nodeadm_config (nodeadm writes it when it configures the node): pullcred's provider config carries no ECR provider, so ECR hosts pullcred's rules do not route get no credentials; run install.sh after nodeadm (in user data) to keep it" >&2
  fi
  kubelet_config > "$work/provider"
  # Fields that differ between kubelet versions are never written for a version guessed.
  if [ -z "$kubelet_version" ] && grep -q 'tokenAttributes' "$work/provider"; then
    die "the kubelet's version is unknown and the rules need tokenAttributes, whose fields differ between versions; name it with --kubelet-version X.Y" 2
  fi
  # A per-workload rule whose images another provider answers with the node's identity is
  # what doctor fails: said once, before anything is written, with the way out.
  if [ "$pass" = check ] && [ -n "$gen_src" ]; then
    set -- config check --no-files --kubelet "$work/provider"
    if [ -n "$kubelet_version" ]; then set -- "$@" --kubelet-version "$kubelet_version"; fi
    "$binary" "$@" "$gen_src" 2> /dev/null | grep "every pod gets the other's credentials" |
      sed "s|$work/provider|$provider_config|g; s|^|install.sh: warning: |" >&2 || true
  fi
  put "$provider_config" 0644 "$work/provider" "$how" text
  # A provider per token audience is the front under another name (pullcred-ecr, …).
  sed -n 's/^ *- name: "\{0,1\}\(pullcred-[A-Za-z0-9-]*\)"\{0,1\}$/\1/p; s/^ *"name": "\(pullcred-[A-Za-z0-9-]*\)",\{0,1\}$/\1/p' \
    "$work/provider" > "$work/names"
  while read -r name; do
    [ "$name" = pullcred-mint ] || put "$bin_dir/$name" 0755 "$binary" whole binary
  done < "$work/names"

  # 4. The kubelet flags, where this flavour's kubelet reads them.
  case $flavor in
    kubeadm)
      env_file=""
      for f in /etc/sysconfig/kubelet /etc/default/kubelet; do
        if [ -e "$root$f" ] || [ -L "$root$f" ]; then env_file=$f; break; fi
      done
      if [ -z "$env_file" ]; then
        if [ -d "$root/etc/sysconfig" ]; then env_file=/etc/sysconfig/kubelet; else env_file=/etc/default/kubelet; fi
      fi
      original "$env_file" > "$work/env.orig"
      if grep -q -- '--image-credential-provider-config=' "$work/env.orig"; then
        cp "$work/env.orig" "$work/env"
      elif grep -q '^KUBELET_EXTRA_ARGS=' "$work/env.orig"; then
        sed -E \
          -e "s|^KUBELET_EXTRA_ARGS=\"(.*)\"\$|KUBELET_EXTRA_ARGS=\"\\1 $flags\"|" \
          -e "s|^KUBELET_EXTRA_ARGS='(.*)'\$|KUBELET_EXTRA_ARGS='\\1 $flags'|" \
          -e "s|^KUBELET_EXTRA_ARGS=([^\"'].*)\$|KUBELET_EXTRA_ARGS=\"\\1 $flags\"|" \
          -e "s|^KUBELET_EXTRA_ARGS=\$|KUBELET_EXTRA_ARGS=\"$flags\"|" \
          "$work/env.orig" > "$work/env"
      else
        { cat "$work/env.orig"; printf 'KUBELET_EXTRA_ARGS="%s"\n' "$flags"; } > "$work/env"
      fi
      put "$env_file" 0644 "$work/env" merge text
      restart_cmd="systemctl restart kubelet" ;;
    systemd)
      printf '[Service]\nEnvironment="KUBELET_EXTRA_ARGS=%s"\n' "$flags" > "$work/dropin"
      put /etc/systemd/system/kubelet.service.d/20-pullcred.conf 0644 "$work/dropin" whole text
      restart_cmd="systemctl daemon-reload && systemctl restart kubelet" ;;
    eks)
      {
        echo "# pullcred's kubelet flags, merged by nodeadm into its NodeConfig."
        echo "apiVersion: node.eks.aws/v1alpha1"
        echo "kind: NodeConfig"
        echo "spec:"
        echo "  kubelet:"
        echo "    flags:"
        echo "      - --image-credential-provider-config=$provider_config"
        echo "      - --image-credential-provider-bin-dir=$bin_dir"
      } > "$work/nodeconfig"
      put /etc/eks/nodeadm.d/90-pullcred.yaml 0644 "$work/nodeconfig" whole text
      restart_cmd="nodeadm init --config-source file:///etc/eks/nodeadm.d/ && systemctl restart kubelet" ;;
    k3s | rke2)
      {
        echo "# pullcred's kubelet flags (appended to kubelet-arg)."
        echo "kubelet-arg+:"
        echo "  - image-credential-provider-config=$provider_config"
        echo "  - image-credential-provider-bin-dir=$bin_dir"
      } > "$work/rancher"
      put "/etc/rancher/$flavor/config.yaml.d/90-pullcred.yaml" 0644 "$work/rancher" whole text
      restart_cmd="systemctl restart $service" ;;
  esac
}

# The state (the manifest and the originals) is trusted and rewritten: it is checked first,
# like every file the steps write.
regular_or_absent "$state/manifest"
trusted_dir "$state"
pass=check
steps
pass=apply
steps

if [ "$dry_run" = 1 ]; then
  echo "dry run: nothing was written"
  exit 0
fi
ensure_dir "$state" 0700
merged_manifest
if [ ! -f "$manifest" ] || ! cmp -s "$work/manifest.now" "$manifest"; then
  replace "$state/manifest" 0600 "$work/manifest.now"
fi
echo "flavor $flavor: the kubelet's flags are $flags"
if [ "$restart" = 1 ] && [ -z "$root" ]; then
  sh -c "$restart_cmd"
  echo "restarted: $restart_cmd"
else
  echo "to apply, run: $restart_cmd"
fi
