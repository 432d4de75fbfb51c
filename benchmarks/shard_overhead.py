"""What sharding costs per step, measured side by side (issue: sharding, target 2).

One problem; ``--impl`` single-process (with ``--threads`` threads, default 1: as one
worker has) and sharded over ``--workers`` local single-threaded Dask workers, built
alternately ``--repeats`` times, each timed for ``--steps`` steps. Per step of the
sharded run: the driver's wall time, the slowest shard's own update time (measured on the
worker), and their difference: the overhead of sharding (the round trip, serialisation,
the reduction of n + n^2 numbers per shard, the solve on the driver). Medians and ratios.

    python benchmarks/shard_overhead.py --m 2**20 --alpha 0.5 --workers 2
"""

from __future__ import annotations

import argparse
import json
import statistics as st

import numpy as np

from sublin_bench import registry
from sublin_bench.problem import ProblemSpec, make_problem
from sublin_bench.provenance import describe, provenance, set_threads
from sublin_bench.sharding import Cluster


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--impl", default="band")
    ap.add_argument("--m", type=lambda s: int(eval(s, {})), default=2**20)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="threads of the single-process run")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    problem = make_problem(ProblemSpec(m=args.m, n=args.n, d=args.d, alpha=args.alpha))
    problem.W0  # generated once, outside every timing, for the single-process builds
    single, sharded, remote, pings = [], [], [], []
    builds = {"single": [], "sharded": []}
    with Cluster(args.workers) as cl:
        print(f"# {args.impl} m={args.m} n={args.n} d={args.d} alpha={args.alpha}; single process with "
              f"{args.threads} thread(s) against {args.workers} single-threaded Dask workers {cl.describe()}; "
              f"{describe(provenance())}", flush=True)
        for rep in range(args.repeats):
            order = ("single", "sharded") if rep % 2 == 0 else ("sharded", "single")
            for which in order:
                tr = registry.create(args.impl, problem) if which == "single" else cl.create(args.impl, problem)
                builds[which].append(tr.build_seconds)
                for _ in range(args.steps):
                    info = tr.step()
                    if which == "single":
                        single.append(info.seconds)
                    else:
                        sharded.append(info.seconds)
                        remote.append(tr._last_remote)
                if which == "sharded":
                    pings.append(tr.ping_seconds())
                    tr.close()
                del tr
            print(f"repeat {rep}: single median {st.median(single) * 1e3:.3f} ms, sharded {st.median(sharded) * 1e3:.3f} ms",
                  flush=True)
    over = np.array(sharded) - np.array(remote)
    out = {
        "single_step_ms": st.median(single) * 1e3, "sharded_step_ms": st.median(sharded) * 1e3,
        "slowest_shard_update_ms": st.median(remote) * 1e3, "overhead_ms": float(np.median(over)) * 1e3,
        "overhead_q25_q75_ms": [float(np.percentile(over, 25)) * 1e3, float(np.percentile(over, 75)) * 1e3],
        "sharded_minus_single_ms": (st.median(sharded) - st.median(single)) * 1e3,
        "noop_round_trip_ms": st.median(pings) * 1e3,
        "build_single_s": st.median(builds["single"]), "build_sharded_s": st.median(builds["sharded"]),
        "steps_each": len(single),
    }
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"provenance": provenance(), "config": vars(args), "result": out}, fh, indent=1)


if __name__ == "__main__":
    main()
