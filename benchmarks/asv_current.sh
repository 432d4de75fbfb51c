#!/usr/bin/env bash
# Day-to-day asv run in the current interpreter (asv.existing.json), recorded under the
# commit checked out. Refuses a working tree with uncommitted changes to tracked files:
# asv would label their timings with HEAD's hash, which they are not.
#
#   benchmarks/asv_current.sh [asv run options...]      e.g. --bench Step --record-samples
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git diff --quiet HEAD --; then
    echo "asv_current.sh: the working tree has uncommitted changes; commit them (or stash) first, so that" \
         "the results are not recorded under $(git rev-parse --short HEAD), which does not contain them." >&2
    exit 2
fi
asv machine --yes >/dev/null
exec asv run --config asv.existing.json --python=same --set-commit-hash "$(git rev-parse HEAD)" "$@"
