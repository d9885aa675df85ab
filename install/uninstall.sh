#!/bin/sh
# Undoes install/install.sh exactly, from its manifest (/var/lib/pullcred/install/manifest):
# files it created are removed, files it changed get their original back, directories it
# created are removed when empty. A file changed since the install is left in place unless
# --force; a secret it installed (--secret) is removed, rotated since or not. DESTDIR as for install.sh. It restarts nothing; the kubelet keeps its old flags
# until restarted.
#
# It runs as root, so it checks the whole manifest before it undoes anything, and undoes
# nothing if: the manifest, or a directory above it, can be changed by a user other than
# root; a line names a path that is not clean and absolute (no . or ..) or not one that
# install.sh manages (its binaries in the recorded bin dir, the recorded provider config,
# pullcred's config, the secrets it installed, the kubelet flags' files, and the
# directories leading to them); or a file it would remove or restore is now a symlink or
# not a regular file. A restored file is staged beside its target and renamed over it.
# --dry-run says what it would remove or restore ("would remove …") and changes nothing.
#
#   install/uninstall.sh [--dry-run] [--force]
set -eu
LC_ALL=C
export LC_ALL

root=${DESTDIR:-}
dry_run=0
force=0
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry_run=1; shift ;;
    --force) force=1; shift ;;
    -h | --help) sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

die() {
  echo "uninstall.sh: $1" >&2
  exit "${2:-1}"
}

state=/var/lib/pullcred/install
manifest=$root$state/manifest
if [ ! -e "$manifest" ] && [ ! -L "$manifest" ]; then
  die "no $state/manifest: pullcred was not installed by install.sh here"
fi
uid=$(id -u)
staged=""
trap 'if [ -n "$staged" ]; then rm -f "$staged"; fi' EXIT

sum() { sha256sum < "$1" | cut -d' ' -f1; }

# True if PATH (under the root) can be changed by a user other than root: it is theirs, or
# group or others may write it; for a symlink, the link or its target.
foreign() {
  [ -n "$(find "$1" -prune ! -user 0 ! -user "$uid" -print)" ] ||
    [ -n "$(find -H "$1" -prune \( ! -user 0 ! -user "$uid" -o -perm -0002 -o \( -perm -0020 ! -group 0 \) \) -print)" ]
}

# Dies unless only root can change DIR (under the root) and each directory above it.
trusted_dir() {
  d=$1
  while :; do
    if { [ -e "$root$d" ] || [ -L "$root$d" ]; } && foreign "$root$d"; then
      die "$d can be changed by a user other than root (it is theirs, or group or others may write it): nothing was undone; chown root and chmod go-w it"
    fi
    [ "$d" != / ] || return 0
    d=$(dirname "$d")
  done
}

# The manifest is what says which files to remove: only root may have written it.
if [ -L "$manifest" ] || [ ! -f "$manifest" ]; then
  die "$state/manifest is not a regular file: nothing was undone"
fi
trusted_dir "$state"
if foreign "$manifest"; then
  die "$state/manifest can be changed by a user other than root (it is theirs, or group or others may write it): nothing was undone"
fi

# A clean absolute path: no empty, . or .. component, no trailing slash, and only the
# characters install.sh accepts.
clean_path() {
  case $1 in
    /*) ;;
    *) return 1 ;;
  esac
  case $1 in
    / | */ | *//* | */./* | */. | */../* | */..) return 1 ;;
    *[!A-Za-z0-9/._+@,=\ -]*) return 1 ;;
  esac
}

# Each manifest line is "<kind> <sum> <path>", the path being the rest of the line.
parse() {
  kind=${1%% *}
  rest=${1#* }
  sum=${rest%% *}
  path=${rest#* }
}

# The bin dirs and provider configs install.sh recorded (one a line); a manifest from before
# it recorded them names the flavours' defaults.
bin_dirs=""
provider_configs=""
while IFS= read -r line; do
  parse "$line"
  case $kind in
    bin-dir) bin_dirs="$bin_dirs$path
" ;;
    provider-config) provider_configs="$provider_configs$path
" ;;
  esac
done < "$manifest"
if [ -z "$bin_dirs" ]; then
  bin_dirs="/usr/local/libexec/kubelet-credential-providers
/etc/eks/image-credential-provider
/var/lib/rancher/credentialprovider/bin
"
  provider_configs="/etc/kubernetes/credential-provider-config.yaml
/etc/eks/image-credential-provider/config.json
/var/lib/rancher/credentialprovider/config.yaml
"
fi
# The files install.sh may write, besides the binaries (one a line).
fixed_files="/etc/pullcred/config.toml
/etc/default/kubelet
/etc/sysconfig/kubelet
/etc/systemd/system/kubelet.service.d/20-pullcred.conf
/etc/eks/nodeadm.d/90-pullcred.yaml
/etc/rancher/k3s/config.yaml.d/90-pullcred.yaml
/etc/rancher/rke2/config.yaml.d/90-pullcred.yaml
"

# True if LINE is one of the lines of LIST.
listed() {
  case $2 in
    "$1
"* | *"
$1
"*) return 0 ;;
  esac
  return 1
}

# A file install.sh manages: a fixed one, a secret, a recorded provider config, or a binary
# (pullcred, pullcred-<name>, docker-credential-pullcred) in a recorded bin dir.
managed_file() {
  if listed "$1" "$fixed_files" || listed "$1" "$provider_configs"; then return 0; fi
  # A --secret (/etc/pullcred/secrets/NAME), or an example's demo secret beside the config.
  case $1 in
    /etc/pullcred/*)
      case ${1#/etc/pullcred/} in
        .* | secrets/.* | */*/*) ;;
        secrets/*[!A-Za-z0-9._-]*) ;;
        secrets/?*) return 0 ;;
        */* | *[!A-Za-z0-9._-]*) ;;
        ?*.password) return 0 ;;
      esac ;;
  esac
  listed "$(dirname "$1")" "$bin_dirs" || return 1
  case ${1##*/} in
    pullcred | docker-credential-pullcred) return 0 ;;
    pullcred-*[!A-Za-z0-9-]*) return 1 ;;
    pullcred-?*) return 0 ;;
  esac
  return 1
}

# A directory install.sh may have created: one on the way to a file it manages (a bin dir
# included), or the state directory, its parents, and anything under it.
managed_dir() {
  case $1 in
    "$state" | "$state"/* | /etc/pullcred/secrets) return 0 ;;
  esac
  case $state in
    "$1"/*) return 0 ;;
  esac
  for list in "$fixed_files" "$provider_configs" "$bin_dirs"; do
    while IFS= read -r f; do
      [ -n "$f" ] || continue
      case $f in
        "$1"/*) return 0 ;;
      esac
      if [ "$list" = "$bin_dirs" ] && [ "$f" = "$1" ]; then return 0; fi
    done <<EOF
$list
EOF
  done
  return 1
}

# Dies unless PATH (under the root) is a regular file or absent.
regular_or_absent() {
  if [ -L "$root$1" ]; then
    die "$1 is a symbolic link, not the file install.sh wrote: nothing was undone; remove it and run again"
  elif [ -e "$root$1" ] && [ ! -f "$root$1" ]; then
    die "$1 is not a regular file, not the file install.sh wrote: nothing was undone; remove it and run again"
  fi
}

# Every line first: refuse a path install.sh does not manage, a link or special file in a
# file's place, a missing original, and (unless --force) a file changed since.
bad=0
changed=0
while IFS= read -r line; do
  parse "$line"
  ok=0
  if clean_path "$path"; then
    case $kind in
      file | modified | secret) if managed_file "$path"; then ok=1; fi ;;
      dir) if managed_dir "$path"; then ok=1; fi ;;
      bin-dir | provider-config) ok=1 ;;
    esac
  fi
  if [ "$ok" = 0 ]; then
    echo "uninstall.sh: the manifest's line \"$line\" names $path: not a path install.sh manages" >&2
    bad=1
    continue
  fi
  case $kind in file | modified | secret) ;; *) continue ;; esac
  trusted_dir "$(dirname "$path")"
  regular_or_absent "$path"
  # A secret install.sh put there goes with it, rotated since or not.
  [ "$kind" != secret ] || continue
  if [ "$kind" = modified ]; then
    regular_or_absent "$state/orig$path"
    [ -f "$root$state/orig$path" ] ||
      die "$path: its original ($state/orig$path) is missing: nothing was undone"
  fi
  if [ -e "$root$path" ] && [ "$(sum "$root$path")" != "$sum" ] && [ "$force" = 0 ]; then
    echo "uninstall.sh: $path was changed since pullcred installed it; --force undoes it anyway" >&2
    changed=1
  fi
done < "$manifest"
[ "$bad" = 0 ] || die "nothing was undone: the manifest names paths install.sh never writes"
[ "$changed" = 0 ] || exit 1

# Puts the original of PATH back: a copy staged beside it, renamed over it.
restore() {
  staged=$(mktemp "$root$(dirname "$1")/.pullcred.XXXXXX")
  cp -p "$root$state/orig$1" "$staged"
  mv -f "$staged" "$root$1"
  staged=""
}

# Says what it did, or with --dry-run what it would do (and does nothing).
say() {
  if [ "$dry_run" = 1 ]; then echo "would $1"; else echo "$2"; fi
}

while IFS= read -r line; do
  parse "$line"
  case $kind in
    file | secret)
      [ "$dry_run" = 1 ] || rm -f "$root$path"
      say "remove $path" "removed $path" ;;
    modified)
      [ "$dry_run" = 1 ] || restore "$path"
      say "restore $path" "restored $path" ;;
  esac
done < "$manifest"
# The state itself, then the directories install.sh created, deepest first, if empty.
dirs=$(while IFS= read -r line; do
  parse "$line"
  if [ "$kind" = dir ]; then printf '%s\n' "$path"; fi
done < "$manifest" | sort -r)
if [ "$dry_run" = 0 ]; then
  rm -rf "$root$state/orig"
  rm -f "$manifest"
fi
while IFS= read -r dir; do
  [ -n "$dir" ] || continue
  if [ "$dry_run" = 1 ]; then
    echo "would remove $dir if empty"
  elif rmdir "$root$dir" 2>/dev/null; then
    echo "removed $dir"
  fi
done <<EOF
$dirs
EOF
