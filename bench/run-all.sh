#!/bin/sh
# Runs every benchmark of capsa, one after another. Run as root.
set -eu
cd "$(dirname "$0")"
for script in ./*.sh; do
    case "$script" in
        ./run-all.sh|./lib.sh) continue ;;
    esac
    echo "######## $script"
    "$script"
    echo
done
