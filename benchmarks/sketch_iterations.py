"""The sketch solver's preconditioning over n and m (issue: solvers, target 1).

For every (n, m) of the grid: one problem (points on the sphere, d = 32), ``band`` with
``solver="sketch"``, ``--steps`` steps; per step the iterations of the preconditioned CG to
the tolerance, the achieved relative residual, ``cond(P^T G P)`` and ``cond(G)`` (both
from ``eigvalsh``, outside the step's time) and the step's seconds. BPSW21's claim is that
the first two do not depend on n or m. Prints a markdown table; ``--json`` writes the rows.

    python benchmarks/sketch_iterations.py --n 32 --n 256 --n 1024 --n 4096 \\
        --m 2**14 --m 2**16 --m 2**18 --m 2**20
"""

from __future__ import annotations

import argparse
import json
import time

from sublin_bench import registry
from sublin_bench.problem import ProblemSpec, make_problem
from sublin_bench.provenance import describe, provenance


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, action="append", help="numbers of inputs (repeatable)")
    ap.add_argument("--m", type=lambda s: int(eval(s, {})), action="append", help="widths, e.g. 2**18 (repeatable)")
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--impl", default="band")
    ap.add_argument("--gamma", type=float, default=4.0)
    ap.add_argument("--json", default=None, help="write the rows to this file")
    args = ap.parse_args(argv)
    ns, ms = args.n or [32, 256], args.m or [2**14, 2**16]
    prov = provenance()
    print(f"# sketch iterations: {args.impl}, d={args.d}, alpha={args.alpha:g}, gamma={args.gamma:g}; {describe(prov)}")
    print("| n | m | step | k (fired inputs) | iterations | relative residual | cond(P^T G P) | cond(G) | step s |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for n in ns:
        for m in ms:
            problem = make_problem(ProblemSpec(m=m, n=n, d=args.d, alpha=args.alpha))
            tr = registry.create(args.impl, problem)
            tr.set_solver("sketch", gamma=args.gamma)
            for _ in range(args.steps):
                info = tr.step()
                t0 = time.perf_counter()
                row = {"n": n, "m": m, "step": info.step, "k": info.gram_rank, "iterations": info.solver_iterations,
                       "relative_residual": info.solver_residual,
                       "precond_condition": info.gram_solve.preconditioned_condition,
                       "gram_condition": info.gram_condition, "seconds": info.seconds}
                row["diagnostic_seconds"] = time.perf_counter() - t0
                rows.append(row)
                print(f"| {n} | 2^{m.bit_length() - 1} | {info.step} | {row['k']} | {row['iterations']} | "
                      f"{row['relative_residual']:.1e} | {row['precond_condition']:.2f} | {row['gram_condition']:.3g} | "
                      f"{row['seconds']:.3g} |", flush=True)
            del tr, problem
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"provenance": prov, "config": vars(args), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
