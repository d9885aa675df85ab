#!/bin/sh
# Undoes install/install.sh exactly, from its manifest (/var/lib/pullcred/install/manifest):
# files it created are removed, files it changed get their original back, directories it
# created are removed when empty. A file changed since the install is left in place unless
# --force. DESTDIR as for install.sh. It restarts nothing; the kubelet keeps its old flags
# until restarted.
#   install/uninstall.sh [--dry-run] [--force]
set -eu

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

state=/var/lib/pullcred/install
manifest=$root$state/manifest
if [ ! -f "$manifest" ]; then
  echo "uninstall.sh: no $state/manifest: pullcred was not installed by install.sh here" >&2
  exit 1
fi

do_() {
  if [ "$dry_run" = 1 ]; then echo "would: $*"; else "$@"; fi
}

# Files first; refuse to undo any that was changed since, unless --force.
changed=0
while read -r kind sum path; do
  [ "$kind" = dir ] && continue
  target=$root$path
  if [ -e "$target" ] && [ "$(sha256sum "$target" | cut -d' ' -f1)" != "$sum" ] && [ "$force" = 0 ]; then
    echo "uninstall.sh: $path was changed since pullcred installed it; --force undoes it anyway" >&2
    changed=1
  fi
done < "$manifest"
[ "$changed" = 0 ] || exit 1

while read -r kind _ path; do
  case $kind in
    file) do_ rm -f "$root$path"; echo "removed $path" ;;
    modified) do_ cp -p "$root$state/orig$path" "$root$path"; echo "restored $path" ;;
  esac
done < "$manifest"
# The state itself, then the directories install.sh created, deepest first, if empty.
dirs=$(awk '$1 == "dir" { print $3 }' "$manifest" | sort -r)
do_ rm -rf "$root$state/orig"
do_ rm -f "$manifest"
echo "$dirs" | while read -r dir; do
  [ -n "$dir" ] || continue
  if [ "$dry_run" = 1 ]; then
    echo "would remove $dir if empty"
  elif rmdir "$root$dir" 2>/dev/null; then
    echo "removed $dir"
  fi
done
