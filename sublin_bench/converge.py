"""Time to accuracy: ``sublin-bench converge``.

Users choose a training method by the time it takes to reach an accuracy, not by the
cost of one iteration: Gauss-Newton converges in a few steps where gradient descent needs
many, while the O(m n d) build is paid once. For each implementation x solver (x alpha),
on the same problem: generate the problem, build, and step until
``||f - y|| <= eps ||y||``, a step limit or a time limit; the clock covers all of it
(problem, build, steps), and the residual after every step is recorded against it.

For an approximate implementation the residual is the *exact* one at its weights
(:func:`sublin_bench.conformance.measure_recall`, outside the clock): its own
``residual_norm`` sums over the neurons it found.

Output (``--out``, default ``reports/converge``): ``results.jsonl`` (one record per
finished combination, appended as it finishes; a re-run skips the finished ones and
refuses a directory of another provenance or configuration), ``report.md`` and
``converge.png`` (residual against wall time and against iterations).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import registry
from .errors import ConfigError, DivergenceError, SublinError
from .problem import ProblemSpec, make_problem
from .provenance import describe, provenance, provenance_differences
from .runner import warm_up
from .sweep import _lock, machine_info, prepare_out

RESULTS = "results.jsonl"
#: What a finished record must share with the run that resumes it.
CONFIG_FIELDS = ("m", "n", "d", "seed", "dtype", "eps", "max_steps", "max_seconds", "step_size", "init", "data")


def _touch_memory(impls, base) -> None:
    """Write (then free) as much memory as the largest combination needs, once, before
    the first clock starts. On this kind of virtual machine the first touch of memory not
    used for a while costs about 1 s per GiB more than a later one (measured: the first
    combination of a run took 1-2 s longer to build than the same build run second, each in
    a fresh process); touching it first gives every combination the same start."""
    from .memory import available_bytes

    spec = ProblemSpec(m=base["m"], n=base["n"], d=base["d"], alpha=0.5, seed=base["seed"], dtype=base["dtype"],
                       data=base["data"])
    need = max(registry.memory_estimate(i, spec) for i in impls)
    size = min(need, available_bytes() // 2)
    if size > 0:
        np.ones(size // 8).sum()  # written, read, freed


def converge_fresh(impl: str, solver: str, spec: ProblemSpec, **kw) -> dict:
    """:func:`converge_one` in a fresh process (spawned, with this process's thread
    counts), so that every combination starts from the same state. In one process the
    first combination would pay what the later ones find done: the first touch of the
    memory of an m-row problem (0.9 s of a 2.8 s time to accuracy at m = 2^20 here, where
    a later combination's freed pages are reused), threadpoolctl's first scan of the
    loaded libraries, numba's cache loads. In the fresh process these first-use costs
    that do not grow with the problem are paid before the clock starts (a small warm-up
    run); the first touch of the problem's own memory is on the clock, as in any real run."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import numba

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(_converge_child, int(numba.get_num_threads()), impl, solver, spec, kw).result()


def _converge_child(threads, impl, solver, spec, kw):
    from .provenance import set_threads

    set_threads(threads)
    warm_up([impl], spec, [solver])
    return converge_one(impl, solver, spec, **kw)


def converge_one(impl: str, solver: str, spec: ProblemSpec, *, eps: float, max_steps: int, max_seconds: float,
                 step_size: float = 1.0) -> dict:
    """One combination, from nothing to ``eps`` (or a limit). Returns its record."""
    from .conformance import measure_recall

    from .solvers import parse_solver

    name, options = parse_solver(solver)  # "gd:rate=1.5": the label stays what the user wrote
    cls = registry.get(impl)
    if hasattr(cls, "warm_up"):  # numba's compilation (or cache load) stays off the clock
        cls.warm_up(spec.dtype)
    t0 = time.perf_counter()
    problem = make_problem(spec)
    trainer = registry.create(impl, problem, step_size=step_size)
    trainer.set_solver(name, **options)
    setup = time.perf_counter() - t0
    ynorm = float(np.linalg.norm(problem.y)) or 1.0

    def residual() -> float:
        if trainer.exact:
            return float(np.linalg.norm(trainer.predict() - problem.y))
        return measure_recall(trainer)["residual"]

    clock = setup
    trace = [{"step": 0, "seconds": clock, "residual": residual()}]
    status, iterations = "limit", []
    while True:
        if trace[-1]["residual"] <= eps * ynorm:
            status = "reached"
            break
        if len(trace) - 1 >= max_steps or clock >= max_seconds:
            break
        try:
            info = trainer.step()
        except DivergenceError as exc:
            status = f"diverged: {exc}"
            break
        clock += info.seconds
        iterations.append(info.solver_iterations)
        trace.append({"step": len(trace), "seconds": clock, "residual": residual()})
    return {
        "impl": impl, "solver": solver, "solver_options": trainer.solver.options(), "alpha": spec.alpha,
        "m": spec.m, "n": spec.n, "d": spec.d, "seed": spec.seed, "dtype": spec.dtype, "init": spec.init,
        "data": spec.data, "eps": eps, "max_steps": max_steps, "max_seconds": max_seconds,
        "step_size": step_size, "status": status, "problem_and_build_seconds": setup,
        "build_seconds": trainer.build_seconds, "steps": len(trace) - 1,
        "seconds": clock if status == "reached" else None, "final_relative_residual": trace[-1]["residual"] / ynorm,
        "solver_iterations": iterations, "trace": trace, "provenance": provenance(),
        "finished_at": time.time(),
    }


def read(directory: Path) -> list[dict]:
    path = Path(directory) / RESULTS
    out = []
    if path.exists():
        for no, line in enumerate(path.read_text().splitlines(), 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from an interruption: measured again
            if isinstance(rec, dict) and {"impl", "solver", "alpha", "trace"} <= set(rec):
                out.append(rec)
    return out


def run_converge(impls, solvers, alphas, base: dict, directory, *, say=print) -> list[dict]:
    """Every combination not already in ``directory``; returns all records."""
    directory = prepare_out(directory)
    lock = _lock(directory)
    try:
        prov = provenance()
        done = read(directory)
        for r in done:
            diff = provenance_differences(r.get("provenance"), prov)
            if diff:
                raise ConfigError(f"{directory / RESULTS} holds results of another provenance ({'; '.join(diff)}); "
                                  "they are never pooled: use another --out.")
            theirs = {k: r.get(k) for k in CONFIG_FIELDS}
            mine = {k: base[k] for k in CONFIG_FIELDS}
            if theirs != mine:
                bad = "; ".join(f"{k}: {theirs[k]} -> {mine[k]}" for k in CONFIG_FIELDS if theirs[k] != mine[k])
                raise ConfigError(f"{directory / RESULTS} holds results of another configuration ({bad}); "
                                  "use another --out.")
        have = {(r["impl"], r["solver"], float(r["alpha"])) for r in done}
        todo = [(i, s, float(a)) for a in alphas for i in impls for s in solvers if (i, s, float(a)) not in have]
        if done:
            say(f"resuming: {len(have)} of {len(have) + len(todo)} combinations already finished")
        if todo:
            _touch_memory(impls, base)
        for impl, solver, alpha in todo:
            spec = ProblemSpec(m=base["m"], n=base["n"], d=base["d"], alpha=alpha, seed=base["seed"],
                               dtype=base["dtype"], init=base["init"], data=base["data"])
            say(f"{impl} / {solver}, alpha {alpha:g} ...")
            try:
                rec = converge_fresh(impl, solver, spec, eps=base["eps"], max_steps=base["max_steps"],
                                     max_seconds=base["max_seconds"], step_size=base["step_size"])
            except SublinError as exc:
                rec = {"impl": impl, "solver": solver, "alpha": alpha, "status": f"skipped: {exc}", "trace": [],
                       "provenance": prov, **{k: base[k] for k in CONFIG_FIELDS}}
            with (directory / RESULTS).open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
            say(f"  {rec['status']}" + (f" in {rec['steps']} steps, {rec['seconds']:.3f} s" if rec.get("seconds") else ""))
            done.append(rec)
        return done
    finally:
        lock.release()


def write_report(records: list[dict], directory) -> Path:
    """``report.md`` and ``converge.png`` from the records."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import impl_color

    directory = Path(directory)
    alphas = sorted({float(r["alpha"]) for r in records})
    fig, axes = plt.subplots(len(alphas), 2, figsize=(11, 4 * len(alphas)), squeeze=False)
    styles = ["-", "--", ":", "-."]
    solvers = sorted({r["solver"] for r in records})
    for row, alpha in zip(axes, alphas):
        for r in records:
            if float(r["alpha"]) != alpha or not r.get("trace"):
                continue
            tr = r["trace"]
            kw = dict(color=impl_color(r["impl"]), linestyle=styles[solvers.index(r["solver"]) % len(styles)],
                      marker=".", label=f"{r['impl']} / {r['solver']}")
            res = [max(p["residual"], 1e-300) for p in tr]
            row[0].semilogy([p["seconds"] for p in tr], res, **kw)
            row[1].semilogy([p["step"] for p in tr], res, **kw)
        row[0].set(xlabel="wall time incl. problem and build (s)", ylabel="||f - y||", title=f"alpha = {alpha:g}")
        row[1].set(xlabel="iteration", title=f"alpha = {alpha:g}")
        row[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(directory / "converge.png", dpi=110)
    plt.close(fig)
    first = records[0]
    lines = ["# sublin-bench time to accuracy", "",
             f"m = {first.get('m')}, n = {first.get('n')}, d = {first.get('d')}, eps = {first.get('eps')} "
             f"(stop at ||f - y|| <= eps ||y||), at most {first.get('max_steps')} steps / {first.get('max_seconds')} s. "
             "Time includes generating the problem and building the index.", "", "![converge](converge.png)", "",
             "| alpha | implementation | solver | status | steps | problem + build s | time to eps (s) | "
             "final ||f-y||/||y|| | solver iterations per step (median) | vs fastest |", "|---|---|---|---|---|---|---|---|---|---|"]
    for alpha in alphas:
        rs = [r for r in records if float(r["alpha"]) == alpha]
        best = min((r["seconds"] for r in rs if r.get("seconds")), default=None)
        for r in rs:
            its = r.get("solver_iterations") or []
            lines.append(
                f"| {alpha:g} | {r['impl']} | {r['solver']} | {r['status'][:60]} | {r.get('steps', '')} | "
                f"{r.get('problem_and_build_seconds', float('nan')):.3g} | "
                f"{'' if not r.get('seconds') else format(r['seconds'], '.4g')} | "
                f"{r.get('final_relative_residual', float('nan')):.2e} | {int(np.median(its)) if its else 0} | "
                f"{'' if not (best and r.get('seconds')) else format(r['seconds'] / best, '.1f') + 'x'} |")
    lines += ["", "## Provenance and machine", "", "```", describe(first.get("provenance") or {}),
              *[f"{k}: {v}" for k, v in machine_info().items()], "```", ""]
    path = directory / "report.md"
    path.write_text("\n".join(lines))
    return path
