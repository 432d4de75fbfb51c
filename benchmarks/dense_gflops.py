"""How close ``dense`` runs to this machine's BLAS: its per-iteration time and the GFLOP/s
of its three matrix products per step, beside plain numpy matmuls of the same shapes,
measured in one run.

    python benchmarks/dense_gflops.py [--m 2**18] [--n 32] [--d 32] [--alpha 0.24]

(Not an asv benchmark: asv imports this module but finds nothing to time.)
"""

import argparse
import time

import numpy as np


def _median_time(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main(argv=None):
    from sublin_bench import ProblemSpec, make_problem, registry
    from sublin_bench.runner import time_steps

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=lambda s: int(eval(s, {})), default=2**18)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=0.24)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args(argv)
    m, n, d = a.m, a.n, a.d
    p = make_problem(ProblemSpec(m=m, n=n, d=d, alpha=a.alpha))
    registry.create("dense", p).run(1)  # warm-up
    per_iter = []
    for _ in range(a.repeats):
        t, _ = time_steps(registry.create("dense", p), 3)
        per_iter.append(t)
    dense = float(np.median(per_iter))
    flops = 2 * m * n * d * 2 + 2 * m * n * n  # update, refresh, counts
    W = np.array(p.W0)
    XT = np.ascontiguousarray(p.X.T)
    A = (W @ XT > p.b).astype(np.float64)
    A32 = A.astype(np.float32)
    GX = np.random.default_rng(0).standard_normal((n, d))
    plain = {
        "W @ X^T (m x d x n)": (_median_time(lambda: W @ XT, a.repeats), 2 * m * n * d),
        "A @ GX (m x n x d)": (_median_time(lambda: A @ GX, a.repeats), 2 * m * n * d),
        "A^T A (n x m x n, float32)": (_median_time(lambda: A32.T @ A32, a.repeats), 2 * m * n * n),
    }
    plain_total = sum(t for t, _ in plain.values())
    print(f"m={m} n={n} d={d} alpha={a.alpha}, median of {a.repeats} runs of T=3 steps")
    print(f"dense per-iteration time: {dense * 1e3:.2f} ms")
    print(f"dense products: {flops / 1e9:.3f} GFLOP per step -> {flops / dense / 1e9:.1f} GFLOP/s "
          f"(whole step, everything included)")
    for name, (t, f) in plain.items():
        print(f"plain numpy {name}: {t * 1e3:.2f} ms, {f / t / 1e9:.1f} GFLOP/s")
    print(f"plain numpy, the same three products back to back: {plain_total * 1e3:.2f} ms, "
          f"{flops / plain_total / 1e9:.1f} GFLOP/s; dense step / plain products = {dense / plain_total:.2f}")


if __name__ == "__main__":
    main()
