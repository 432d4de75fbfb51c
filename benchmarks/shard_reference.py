"""A sharded streaming reference against the implicit band, beyond one process's patience
(issue: sharding, target 3).

Inside one Dask cluster (``--workers`` local single-threaded workers) both ``dense-stream``
(the exact O(m n d)-per-step reference) and ``band-implicit`` run sharded, and
:func:`sublin_bench.conformance.compare` checks them against each other step after step:
fired sets exactly (CSR), predictions, Gram and the rows that matter of the weights within
the documented rounding model.

    python benchmarks/shard_reference.py --m 2**28 --alpha 0.5 --steps 3 --workers 2
"""

from __future__ import annotations

import argparse
import time

from sublin_bench.conformance import compare
from sublin_bench.problem import ProblemSpec, make_problem
from sublin_bench.provenance import describe, provenance
from sublin_bench.sharding import sharded


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--m", type=lambda s: int(eval(s, {})), default=2**24)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    problem = make_problem(ProblemSpec(m=args.m, n=args.n, d=args.d, alpha=args.alpha))
    t0 = time.perf_counter()
    with sharded(args.workers) as cl:
        print(f"# band-implicit against dense-stream, both sharded over {cl.describe()}; "
              f"m={args.m} n={args.n} d={args.d} alpha={args.alpha}; {describe(provenance())}", flush=True)
        c = compare(problem, "band-implicit", reference="dense-stream", steps=args.steps)
    print(f"{c.status}: {c.steps_compared}/{args.steps} steps compared, worst err/tol "
          f"{max(c.worst.values(), default=0.0):.2e}; {time.perf_counter() - t0:.1f} s in all"
          + (f"; {c.message}" if c.message else ""))
    return 0 if c.status == "agree" else 1


if __name__ == "__main__":
    raise SystemExit(main())
