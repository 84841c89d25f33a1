#!/bin/sh
# Fails when docs/compat.md differs from what the registry says.
set -eu
cd "$(dirname "$0")/.."
"$1" --print-compat > build/compat.check.md
if ! cmp -s build/compat.check.md docs/compat.md; then
    echo "docs/compat.md is stale: run '$1 --print-compat > docs/compat.md'" >&2
    diff -u docs/compat.md build/compat.check.md | head -40 >&2
    exit 1
fi
echo "docs/compat.md is current"
