#!/usr/bin/env bash
# The regression gate: benchmark the merge base of HEAD with BASE (default: main) and
# HEAD, each built into its own virtualenv from its commit (asv.conf.json), and fail
# (non-zero exit) when a headline benchmark (per-iteration time of dense, tree and band
# on the default grid) got slower by more than FACTOR (default 1.2).
#
#   benchmarks/regression_gate.sh [BASE] [FACTOR]
#
# asv's noise handling: every benchmark is sampled repeatedly (the suite's repeat
# setting), the rounds of the two commits are interleaved (--interleave-rounds), and a
# change counts only when it exceeds FACTOR and asv's statistical test finds the two
# sample sets different. --split prints improvements, regressions and the rest apart.
# Environment: SUBLIN_BENCH_ASV_PROFILE (default: default) and SUBLIN_BENCH_ASV_IMPLS
# (default: dense,tree,band) choose the grid; both are exported to the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:-main}"
factor="${2:-1.2}"
export SUBLIN_BENCH_ASV_PROFILE="${SUBLIN_BENCH_ASV_PROFILE:-default}"
export SUBLIN_BENCH_ASV_IMPLS="${SUBLIN_BENCH_ASV_IMPLS:-dense,tree,band}"
merge_base="$(git merge-base "$base" HEAD)"
echo "regression gate: $(git rev-parse --short "$merge_base") (merge base with $base) -> $(git rev-parse --short HEAD)," \
     "factor $factor, profile $SUBLIN_BENCH_ASV_PROFILE, implementations $SUBLIN_BENCH_ASV_IMPLS"
asv machine --yes >/dev/null
exec asv continuous --config asv.conf.json --factor "$factor" --split --interleave-rounds \
    --bench 'Step.time_step' --show-stderr "$merge_base" HEAD
