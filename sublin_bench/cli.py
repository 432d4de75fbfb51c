"""The ``sublin-bench`` command line."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__, registry
from .errors import SublinError
from .interface import validate_step_size
from .problem import ProblemSpec
from .solvers import SOLVERS
from .sweep import MAX_SIZE, SweepConfig

console = Console(width=None if sys.stdout.isatty() else 120)


class _Group(click.Group):
    """Turns deliberate errors into one line and a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SublinError as exc:
            raise click.ClickException(str(exc)) from None


class _Power(click.ParamType):
    """A number of type ``cast`` at least ``least``, also written ``A**B`` or ``A^B``."""

    def __init__(self, name, cast, least, examples, most=None):
        self.name, self.cast, self.least, self.examples, self.most = name, cast, least, examples, most

    def convert(self, value, param, ctx):
        kind = "an integer" if self.cast is int else "a number"
        if isinstance(value, self.cast):
            out = value
        else:
            text = str(value).strip()
            mt = re.fullmatch(r"([\d.]+)\s*(?:\*\*|\^)\s*([\d.]+)", text)
            try:
                if mt:
                    base, exp = self.cast(mt.group(1)), self.cast(mt.group(2))
                    # judge the size from logarithms first: 9**99999999 would take minutes
                    if base > 1 and exp * math.log2(base) > 1100:
                        self.fail(f"{value!r} is far too large{self._limit()}", param, ctx)
                    out = base**exp
                else:
                    out = self.cast(text)
            except (ValueError, OverflowError):
                self.fail(f"{value!r} is not {kind} (write e.g. {self.examples})", param, ctx)
        if isinstance(out, float) and not math.isfinite(out):
            self.fail(f"{value!r} is not a finite number (write e.g. {self.examples})", param, ctx)
        if not out >= self.least:
            self.fail(f"{value!r} must be at least {self.least}", param, ctx)
        if self.most is not None and out > self.most:
            self.fail(f"{value!r} is too large{self._limit()}", param, ctx)
        return out

    def _limit(self):
        return f" (at most {self.most_text})" if self.most is not None else ""

    @property
    def most_text(self):
        return "2**62" if self.most == MAX_SIZE else f"{self.most:g}"


#: A positive integer, also written ``2**18`` or ``2^18``.
SIZE = _Power("size", int, 1, "262144, 2**18 or 2^18", most=MAX_SIZE)
#: A grid ratio >= 1.1, also written ``2**0.5`` (exact, so that the grid meets the powers
#: of two; ``1.4142`` would fall just short of them).
FACTOR = _Power("ratio", float, 1.1, "2, 2**0.5 or 2^0.5", most=1024.0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sublin-bench")
def cli():
    """Benchmark and verify sublinear-time Gauss-Newton training of two-layer
    shifted-ReLU networks.

    \b
    Main job:     sublin-bench scale          (cost exponent in m, plots, report)
    Correctness:  sublin-bench verify         (every implementation against dense)
    The papers:   sublin-bench proofs --quick (their statements, checked numerically)
    One run:      sublin-bench run --impl tree --m 2**18
    """


@cli.command("list")
def list_cmd():
    """List the registered implementations and whether each can run here."""
    table = Table("implementation", "available", "reason / kind")
    for name in registry.names():
        ok, reason = registry.available(name)
        kind = ""
        if ok:
            cls = registry.get(name)
            kind = "sublinear" if cls.sublinear else "dense"
            if not cls.exact:
                kind += ", approximate"
        table.add_row(name, "yes" if ok else "no", kind if ok else escape(reason))
    console.print(table)
    _print_conflicts()


def _print_conflicts():
    for name, why in registry.conflicts().items():
        console.print(f"[yellow]refused registration of {name!r}[/]: {escape(why)}")


def _threads_option(f):
    return click.option(
        "--threads", type=click.IntRange(min=1), default=None,
        help="Threads for BLAS (every copy loaded, via threadpoolctl) and numba; recorded with the results. "
             "[default: the cores numba sees]",
    )(f)


def _apply_threads(threads):
    """Set the thread counts explicitly (default: every core numba sees), so that they are
    the harness's choice and recorded, not the environment's accident."""
    import numba

    from .provenance import set_threads

    return set_threads(threads if threads is not None else int(numba.config.NUMBA_NUM_THREADS))


def _cluster_options(f):
    f = click.option(
        "--scheduler", default=None, envvar="DASK_SCHEDULER_ADDRESS", show_envvar=True,
        help="Shard over the workers of this Dask scheduler (tcp://host:port); see README, 'Past one machine'.",
    )(f)
    return click.option(
        "--workers", type=click.IntRange(min=1), default=None,
        help="Shard every trainer over neuron ranges on N local single-threaded Dask workers (the dist extra); "
             "with --scheduler, wait for N workers.",
    )(f)


def _sharding(workers, scheduler):
    """The cluster block of ``--workers``/``--scheduler`` (nothing when neither is given)."""
    import contextlib

    if workers is None and not scheduler:
        return contextlib.nullcontext()
    from .sharding import sharded

    return sharded(workers, scheduler)


def _spec_options(f):
    for opt in reversed(
        [
            click.option("--m", "m", type=SIZE, default="2**16", show_default=True, help="Width (neurons)."),
            click.option("--n", "n", type=SIZE, default=32, show_default=True, help="Number of inputs."),
            click.option("--d", "d", type=SIZE, default=None, help="Input dimension [default: 32 on the sphere, "
                         "the data set's otherwise]."),
            click.option("--alpha", type=float, default=0.24, show_default=True, help="Sparsity exponent in [0, 1)."),
            click.option("--b", "b", type=float, default=None, help="Threshold (default sqrt(2 alpha ln m))."),
            click.option("--seed", type=int, default=0, show_default=True),
            click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True),
            _INIT_OPTION,
            _DATA_OPTION,
        ]
    ):
        f = opt(f)
    return f


_DATA_OPTION = click.option(
    "--data", default="sphere", show_default=True,
    help="Inputs: sphere, digits, breast_cancer, wine, diabetes (bundled with scikit-learn: the data extra), "
         "or a .npy/.npz/.csv file (features, then the label column). --n rows are drawn from it. "
         "See README, 'Real data'.",
)


def _dimension(data, d):
    """``--d`` for ``--data``: the data set's (checked against an explicit --d)."""
    if data == "sphere":
        return 32 if d is None else d
    from .data import dimension

    dd = dimension(data)
    if d is not None and d != dd:
        raise click.UsageError(f"--data {data} has d = {dd} features after preprocessing; drop --d or use --d {dd}.")
    return dd


_INIT_OPTION = click.option(
    "--init", type=click.Choice(["plain", "sampled"]), default="plain", show_default=True,
    help="How W0 is drawn: every row (plain), or the band candidates directly (sampled: sublinear in m; "
         "see README, 'Widths beyond memory').",
)


def _build_with_progress(impl, spec, **kw):
    """Build a trainer with a progress bar over the generator's blocks (the O(m n d) passes
    and the generation of W0), transient, on stderr-like console output."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .generator import block_progress
    from .runner import build_trainer

    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} blocks"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal and
                  spec.m < 2**24) as bar:
        task = bar.add_task(f"building {impl} (m={spec.m})", total=None)
        with block_progress(lambda done, total: bar.update(task, completed=done, total=total)):
            return build_trainer(impl, spec, **kw)


@cli.command()
@click.option("--impl", "impl", default="tree", show_default=True, help="Implementation name (see `list`).")
@_spec_options
@click.option("--steps", type=click.IntRange(min=0), default=5, show_default=True)
@click.option("--step-size", type=float, default=1.0, show_default=True, help="Gauss-Newton step size eta.")
@click.option("--solver", type=click.Choice(SOLVERS), default="exact", show_default=True,
              help="How the Gauss-Newton system is solved (sublin_bench/solvers.py).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_threads_option
@_cluster_options
def run(impl, m, n, d, alpha, b, seed, dtype, init, data, steps, step_size, solver, as_json, threads, workers,
        scheduler):
    """Train one implementation for a few steps and print a per-step table.

    Exits non-zero (one line) if training diverges to inf/NaN.

    \b
    Sharded over two local Dask workers:
      sublin-bench run --impl band-implicit --m 2**26 --alpha 0.5 --workers 2
    """
    _apply_threads(threads)
    with _sharding(workers, scheduler) as cluster:
        _run(impl, m, n, d, alpha, b, seed, dtype, init, data, steps, step_size, solver, as_json, cluster)


def _run(impl, m, n, d, alpha, b, seed, dtype, init, data, steps, step_size, solver, as_json, cluster):
    from .provenance import describe, provenance
    from .runner import build_trainer

    t_all = time.perf_counter()
    spec = ProblemSpec(m=m, n=n, d=_dimension(data, d), alpha=alpha, seed=seed, b=b, dtype=dtype, init=init,
                       data=data)
    trainer = build_trainer(impl, spec, step_size=step_size, solver=solver) if as_json else _build_with_progress(
        impl, spec, step_size=step_size, solver=solver)
    setup = time.perf_counter() - t_all  # problem (sampling, if any) plus the build
    infos = []
    if not as_json:
        console.print(f"[bold]{impl}[/] on {spec.describe()}, step size {step_size:g}, solver {trainer.solver!r}")
        if cluster is not None:
            console.print(f"{trainer.describe}: {cluster.describe()}; shard builds "
                          + ", ".join(f"{x:.3f}" for x in trainer.shard_build_seconds) + " s")
        if data != "sphere":
            pre = trainer.problem.data["preprocessing"]
            console.print(f"data: {data} ({trainer.problem.data['rows_used']} of {trainer.problem.data['rows_available']} "
                          f"rows, d = {spec.d}; {pre['labels']}; separation "
                          f"{'n/a' if pre['separation'] is None else format(pre['separation'], '.3g')}, "
                          f"{pre['duplicates_dropped']} duplicates dropped, {pre['near_duplicate_pairs']} near-duplicate pairs)")
            for what, key in (("constant columns dropped", "constant_columns_dropped"),
                              ("all-zero rows dropped", "all_zero_rows_dropped"),
                              ("rows all zero after centring dropped", "zero_rows_dropped")):
                if pre[key]:
                    console.print(f"[yellow]{what}[/]: {pre[key][:12]}" + (" ..." if len(pre[key]) > 12 else ""))
        if trainer.problem.note:
            console.print(f"[yellow]note[/]: {escape(trainer.problem.note)}")
        stored = getattr(trainer, "stored", None)
        console.print(f"index build: {trainer.build_seconds:.4f} s (problem and build: {setup:.4f} s)"
                      + (f"; {stored} neurons stored of {spec.m}" if stored is not None else ""))
        table = Table("step", "residual", "fired mean", "fired max", "flips", "moved", "seconds", "work",
                      *(["solver its", "solve rel. residual"] if solver != "exact" else []))
    for _ in range(steps):
        info = trainer.step()
        infos.append(info)
        if not as_json:
            table.add_row(
                str(info.step), f"{info.residual_norm:.3e}", f"{info.fired_mean:.1f}", str(info.fired_max),
                str(info.flips), str(info.moved), f"{info.seconds:.4f}", str(info.work.get("work", "")),
                *([str(info.solver_iterations), f"{info.solver_residual:.1e}"] if solver != "exact" else []),
            )
    final = float(((trainer.predict() - trainer.problem.y) ** 2).sum() ** 0.5)
    if as_json:
        out = {
            "impl": impl,
            "spec": {k: getattr(spec, k) for k in ("m", "n", "d", "alpha", "seed", "dtype")} | {"b": spec.threshold},
            "step_size": step_size,
            "solver": trainer.solver.name,
            "solver_options": trainer.solver.options(),
            "build_seconds": trainer.build_seconds,
            "steps": [i.as_dict() for i in infos],
            "final_residual_norm": final,
            "setup_seconds": setup,
            "total_seconds": time.perf_counter() - t_all,
            "init": trainer.problem.init,
            "data": trainer.problem.data,
            "counters": trainer.counters,
            "provenance": provenance(),
            "cluster": None if cluster is None else cluster.describe() | {
                "shards": trainer.shards, "bounds": trainer.bounds, "shard_build_seconds": trainer.shard_build_seconds},
        }
        click.echo(json.dumps(out, indent=2))
    else:
        console.print(table)
        y = float(np.linalg.norm(trainer.problem.y))
        console.print(f"residual after {steps} steps: {final:.3e} ({final / y:.2e} of ||y||); "
                      f"end to end (problem, build, steps): {time.perf_counter() - t_all:.3f} s")
        if infos and final > 1e3 * max(infos[0].residual_norm, 1e-300):
            console.print(f"[yellow]the residual grew {final / infos[0].residual_norm:.3g}x over the run: "
                          f"training diverges at step size {step_size:g}; try a smaller --step-size[/]")
        console.print(f"[dim]{escape(describe(provenance()))}[/]")


@cli.command()
@click.option("--impl", "impls", multiple=True, help="Implementation(s), repeatable [default: dense, band].")
@click.option("--solver", "solvers", multiple=True,
              help=f"Solver(s), repeatable: {', '.join(SOLVERS)}, with options as NAME:KEY=VALUE,... "
                   "(gd:rate=1.5, sketch:gamma=8) [default: exact and gd].")
@click.option("--m", "m", type=SIZE, default="2**18", show_default=True, help="Width (neurons).")
@click.option("--n", "n", type=SIZE, default=32, show_default=True, help="Number of inputs.")
@click.option("--d", "d", type=SIZE, default=None, help="Input dimension [default: 32 on the sphere, the data set's otherwise].")
@click.option("--alpha", "alphas", type=float, multiple=True, help="Sparsity exponent(s) [default: 0.24].")
@click.option("--eps", type=float, default=1e-8, show_default=True, help="Stop at ||f - y|| <= eps ||y||.")
@click.option("--max-steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--max-seconds", type=float, default=600.0, show_default=True, help="Per combination, including the build.")
@click.option("--step-size", type=float, default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@_INIT_OPTION
@_DATA_OPTION
@click.option("--out", default="reports/converge", show_default=True, type=click.Path(file_okay=False))
@_threads_option
def converge(impls, solvers, m, n, d, alphas, eps, max_steps, max_seconds, step_size, seed, dtype, init, data, out,
             threads):
    """Time to accuracy: every --impl x --solver (x --alpha) from the same problem until
    ||f - y|| <= eps ||y|| (or --max-steps / --max-seconds), timing everything including
    the problem and the build.

    Writes results.jsonl (resumable: finished combinations are kept), report.md and
    converge.png (residual against wall time and iterations) into --out.

    \b
    Examples:
      sublin-bench converge --impl band --solver exact --solver gd --m 2**20 --eps 1e-8
      sublin-bench converge --impl band --solver gd:rate=1 --solver gd:rate=1.5 --solver gd:rate=1.9
    """
    from .converge import run_converge, write_report
    from .solvers import parse_solver

    for sv in solvers:
        try:
            parse_solver(sv)
        except SublinError as exc:
            raise click.BadParameter(str(exc), param_hint="--solver") from None

    _apply_threads(threads)
    if not (0 < eps < 1):
        raise click.BadParameter(f"--eps must be in (0, 1), got {eps!r}.", param_hint="--eps")
    if not (max_seconds > 0 and math.isfinite(max_seconds)):
        raise click.BadParameter(f"--max-seconds must be a finite number > 0, got {max_seconds!r}.",
                                 param_hint="--max-seconds")
    validate_step_size(step_size)
    impls = list(dict.fromkeys(impls or ("dense", "band")))
    for nm in impls:
        registry.get(nm)  # unknown names: one line listing the known ones
    base = {"m": m, "n": n, "d": _dimension(data, d), "seed": seed, "dtype": dtype, "eps": eps,
            "max_steps": max_steps, "max_seconds": max_seconds, "step_size": step_size, "init": init, "data": data}
    records = run_converge(impls, list(dict.fromkeys(solvers or ("exact", "gd"))), list(dict.fromkeys(alphas or (0.24,))),
                           base, out, say=lambda s: console.print(escape(s)))
    path = write_report(records, out)
    console.print(f"report: {path}  plot: {Path(out) / 'converge.png'}")


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


#: The verify grid: (m, n, d, alpha, dtype, step size). Small enough to run in seconds,
#: wide enough to cover empty sets, plain ReLU, the lazy and the active regime, float32.
VERIFY_GRID = [
    (1, 1, 1, 0.0, "float64", 1.0),
    (64, 5, 1, 0.5, "float64", 1.0),
    (512, 8, 4, 0.0, "float64", 0.5),
    (2048, 16, 8, 0.24, "float64", 1.0),
    (2048, 16, 8, 0.5, "float64", 1.0),
    (4096, 32, 16, 0.5, "float64", 1.5),
    (4096, 24, 12, 0.9, "float64", 1.0),
    (2048, 16, 8, 0.24, "float32", 1.0),
    (4096, 32, 16, 0.5, "float32", 1.0),
]
#: The verify grid on real data (d is the data's): (m, n, alpha, dtype, step size).
VERIFY_DATA_GRID = [
    (512, 8, 0.0, "float64", 0.5),
    (2048, 16, 0.24, "float64", 1.0),
    (2048, 16, 0.5, "float64", 1.0),
    (4096, 32, 0.5, "float64", 1.5),
    (4096, 24, 0.9, "float64", 1.0),
    (2048, 16, 0.24, "float32", 1.0),
]


@cli.command()
@click.option("--impl", "impls", multiple=True, help="Implementation(s) to check (default: all available).")
@click.option("--steps", type=click.IntRange(min=1), default=6, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--reference", default="dense", show_default=True,
              help="The exact implementation to compare with; dense-stream where dense does not fit.")
@click.option("--m", "m", type=SIZE, default=None, help="Check this one width instead of the built-in grid.")
@click.option("--n", "n", type=SIZE, default=32, show_default=True, help="With --m: number of inputs.")
@click.option("--d", "d", type=SIZE, default=None, help="With --m: input dimension [default: 32, or the data's].")
@click.option("--alpha", type=float, default=0.5, show_default=True, help="With --m: sparsity exponent.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="With --m: working precision.")
@_INIT_OPTION
@_DATA_OPTION
@_threads_option
@_cluster_options
def verify(impls, steps, seed, reference, m, n, d, alpha, dtype, init, data, threads, workers, scheduler):
    """Compare every available implementation with dense (or --reference) on a grid of
    problems, or on one (--m, with --n, --d, --alpha, --init, --dtype).

    Exits with status 1 if any implementation disagrees beyond the documented
    tolerances (see sublin_bench/conformance.py), or if an implementation asked for
    with --impl is not available.

    Approximate implementations (lsh) are measured, not held to equality: the second
    table gives the recall and precision of their fired sets at their own weights, their
    exact residual beside the reference's, and the prediction gap to the reference's
    trajectory. They fail only if they report a neuron that does not fire, or compute
    something other than the Gauss-Newton step of the sets they report.

    With --workers (or --scheduler) the implementations run sharded over the cluster and
    are compared with the single-process reference.

    \b
    Example beyond dense's memory:
      sublin-bench verify --impl band-implicit --reference dense-stream --m 2**26 --alpha 0.5 --init sampled
    """
    _apply_threads(threads)
    with _sharding(workers, scheduler) as cluster:
        _verify(impls, steps, seed, reference, m, n, d, alpha, dtype, init, data, cluster)


def _verify(impls, steps, seed, reference, m, n, d, alpha, dtype, init, data, cluster):
    from .conformance import DISAGREE, compare, compare_approximate
    from .problem import make_problem
    from .runner import check_memory as check_memory_for

    create = None if cluster is None else cluster.create
    asked = list(dict.fromkeys(impls))
    names = asked or [nm for nm in registry.names() if nm != reference]
    for nm in [*names, reference]:
        if nm not in registry.names():
            registry.get(nm)  # unknown names fail here, with the known ones listed
    ok_ref, why_ref = registry.available(reference)
    if not ok_ref:
        raise click.ClickException(f"the reference {reference!r} is not available here: {why_ref}")
    if not registry.get(reference).exact:
        raise click.ClickException(f"the reference {reference!r} is not an exact implementation.")
    if m is None and data == "sphere":
        grid = [(gm, gn, gd, ga, gt, ge, "plain") for gm, gn, gd, ga, gt, ge in VERIFY_GRID]
    elif m is None:  # real data: its d, the grid's widths, sizes and regimes
        dd = _dimension(data, d)
        grid = [(gm, gn, dd, ga, gt, ge, "plain") for gm, gn, ga, gt, ge in VERIFY_DATA_GRID]
    else:
        grid = [(m, n, _dimension(data, d), alpha, dtype, 1.0, init)]
    sharded = "" if cluster is None else f" (implementations sharded over {len(cluster.workers)} Dask worker(s))"
    table = Table("implementation", "m", "n", "d", "alpha", "dtype", "eta", "result", "steps", "worst err/tol",
                  title=f"against {reference}" + (f", data {data}" if data != "sphere" else "") + sharded)
    approx = Table("implementation", "m", "n", "d", "alpha", "dtype", "eta", "result", "mean recall",
                   "min precision", "residual (ref)", "prediction gap",
                   title=f"approximate, measured against {reference}")
    bad = 0
    skipped = []
    for nm in names:
        ok, reason = registry.available(nm)
        if not ok:
            skipped.append((nm, reason))
            continue
        for m, n, d, alpha, dtype, eta, init in grid:
            spec = ProblemSpec(m=m, n=n, d=d, alpha=alpha, seed=seed, dtype=dtype, init=init, data=data)
            for who in (nm, reference):
                check_memory_for(who, spec)
            if not registry.get(nm).exact:
                c = compare_approximate(make_problem(spec), nm, steps=steps, step_size=eta, reference=reference,
                                        create=create)
                bad += c.status == DISAGREE
                style = "green" if c.ok else "bold red"
                approx.add_row(
                    nm, str(m), str(n), str(d), f"{alpha:g}", dtype, f"{eta:g}",
                    f"[{style}]{'measured' if c.ok else c.status}[/]", f"{c.mean_recall:.3f}",
                    f"{min(c.precision, default=1.0):.3f}",
                    f"{c.residual[-1]:.2e} ({c.residual_reference[-1]:.2e})", f"{c.prediction_gap[-1]:.2e}",
                )
                if c.message:
                    approx.add_row("", "", "", "", "", "", "", f"[dim]{escape(c.message)}[/]")
                continue
            c = compare(make_problem(spec), nm, steps=steps, step_size=eta, reference=reference, create=create)
            bad += c.status == DISAGREE
            worst = max(c.worst.values(), default=0.0)
            style = {"agree": "green", "disagree": "bold red"}.get(c.status, "yellow")
            table.add_row(
                nm, str(m), str(n), str(d), f"{alpha:g}", dtype, f"{eta:g}",
                f"[{style}]{c.status}[/]", f"{c.steps_compared}/{steps}", f"{worst:.2e}",
            )
            if c.message:
                table.add_row("", "", "", "", "", "", "", "", "", f"[dim]{escape(c.message)}[/]")
    if table.row_count:
        console.print(table)
    if approx.row_count:
        console.print(approx)
    _print_conflicts()
    for nm, reason in skipped:
        console.print(f"[yellow]skipped {nm}[/]: {escape(reason)}")
    if bad:
        console.print(f"[bold red]{bad} disagreement(s)[/]")
        sys.exit(1)
    if asked and skipped:
        console.print(f"[bold red]not verified[/]: {', '.join(nm for nm, _ in skipped)} (asked for with --impl, "
                      "but not available here)")
        sys.exit(1)
    if len(skipped) == len(names):
        console.print("[bold red]nothing was verified[/]: no implementation is available")
        sys.exit(1)
    console.print("[green]all compared steps agree within tolerance[/]"
                  + (" (approximate implementations: measured, and consistent with the sets they report)"
                     if approx.row_count else ""))


@cli.command()
@click.option("--impl", "impls", multiple=True, help="Implementation(s) [default: dense, tree, band].")
@click.option("--alpha", "alphas", type=float, multiple=True, help="Sparsity exponent(s) [default: 0.24 and 0.5].")
@click.option("--solver", "solvers", multiple=True, type=click.Choice(SOLVERS),
              help="How each step is solved, repeatable: every implementation with every solver [default: exact].")
@click.option("--vary", type=click.Choice(["m", "n", "d"]), default="m", show_default=True,
              help="The axis of the grid: the width m, or n or d at the fixed width --m.")
@click.option("--m-min", type=SIZE, default="2**12", show_default=True, help="Smallest width (--vary m).")
@click.option("--m-max", type=SIZE, default="2**20", show_default=True, help="Largest width (--vary m).")
@click.option("--m", "m", type=SIZE, default="2**18", show_default=True, help="The width with --vary n or d.")
@click.option("--n-min", type=SIZE, default=None, help="With --vary n: the smallest n.")
@click.option("--n-max", type=SIZE, default=None, help="With --vary n: the largest n.")
@click.option("--d-min", type=SIZE, default=None, help="With --vary d: the smallest d.")
@click.option("--d-max", type=SIZE, default=None, help="With --vary d: the largest d.")
@click.option("--factor", type=FACTOR, default="2**0.5", show_default=True,
              help="Grid ratio on the varied axis: 2**0.5 puts two points in every doubling, 2 one.")
@click.option("--n", "n", type=SIZE, default=32, show_default=True, help="Number of inputs (unless --vary n).")
@click.option("--d", "d", type=SIZE, default=None, help="Input dimension (unless --vary d) [default: 32, or the data's].")
@click.option("--steps", type=click.IntRange(min=1), default=SweepConfig.steps, show_default=True, help="T steps timed per point.")
@click.option("--repeats", type=click.IntRange(min=1), default=SweepConfig.repeats, show_default=True, help="Fresh builds per point.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@_INIT_OPTION
@_DATA_OPTION
@click.option("--out", "out", type=click.Path(file_okay=False), default="reports/scale", show_default=True,
              help="Report directory; re-running with it resumes (finished points are kept). "
                   "With --from-asv the default is reports/asv/MACHINE-COMMIT.")
@click.option("--warmup-steps", type=click.IntRange(min=0), default=None,
              help="Steps after each build left out of the steady-state time (the median of the rest); "
                   "the first step is fitted separately as well. [default: 1, or 0 with --steps 1]")
@_threads_option
@click.option("--from-asv", "from_asv", type=click.Path(exists=True, file_okay=False), default=None,
              help="Build the report from an asv results directory instead of measuring.")
@click.option("--asv-commit", default=None, help="With --from-asv: the commit (hash prefix) to report.")
@click.option("--asv-machine", default=None, help="With --from-asv: the asv machine name to report.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@_cluster_options
@click.pass_context
def scale(ctx, impls, alphas, solvers, vary, m_min, m_max, m, n_min, n_max, d_min, d_max, factor, n, d, steps, repeats,
          seed, dtype, init, data, out, warmup_steps, threads, from_asv, asv_commit, asv_machine, no_progress, workers,
          scheduler):
    """Sweep m (or n, or d), fit the cost exponent, and write report.md, scaling.png, results.jsonl.

    \b
    With no options: dense, tree and band at alpha 0.24 and 0.5, n = d = 32,
    m = 2^12 .. 2^20 with two widths per doubling, 8 repeats of T = 3 steps
    (about two and a half minutes on 2 cores).

    \b
    The cost in n, and the solvers against each other:
      sublin-bench scale --vary n --m 2**18 --n-min 256 --n-max 4096 --factor 2 \\
          --impl band --solver exact --solver sketch --solver cg --alpha 0.5
    """
    from .report import analyse, write_report
    from .sweep import prepare_out

    impls = list(dict.fromkeys(impls))
    alphas = list(dict.fromkeys(float(a) for a in alphas))
    for name in impls:
        registry.get(name)  # unknown names fail before anything is printed or run
    if from_asv:
        from .asv_import import default_out, load_asv_results

        records, cfg_dict, mach = load_asv_results(from_asv, commit=asv_commit, machine=asv_machine,
                                                   impls=impls or None, alphas=alphas or None)
        if ctx.get_parameter_source("out") is click.core.ParameterSource.DEFAULT:
            out = default_out(mach)
        prepare_out(out)
        an = analyse(records, cfg_dict, mach, warmup_steps=0)
        cmd = f"sublin-bench scale --from-asv {from_asv}" + (f" --asv-commit {asv_commit}" if asv_commit else "") + (
            f" --asv-machine {asv_machine}" if asv_machine else "")
        path = write_report(an, out, source=cmd)
        console.print(f"asv results of commit {mach['commit'][:10]} on machine {mach.get('machine')!r}; report in {out}/")
    else:
        if asv_commit or asv_machine:
            raise click.UsageError("--asv-commit and --asv-machine go with --from-asv.")
        if vary != "m":
            for name in ("m_min", "m_max"):
                if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT:
                    raise click.UsageError(f"--{name.replace('_', '-')} goes with --vary m; with --vary {vary} "
                                           "the width is --m.")
        default = SweepConfig()
        cfg = SweepConfig(
            impls=impls or default.impls, alphas=alphas or default.alphas, solvers=list(solvers) or default.solvers,
            vary=vary, m=m, n_min=n_min, n_max=n_max, d_min=d_min, d_max=d_max,
            m_min=m_min, m_max=m_max, m_factor=factor, n=n, d=_dimension(data, d) if vary != "d" else (d or 32),
            steps=steps, repeats=repeats, seed=seed, dtype=dtype, init=init, data=data,
        )
        if warmup_steps is None:
            warmup_steps = min(1, cfg.steps - 1)
        if warmup_steps >= cfg.steps:
            raise click.UsageError(
                f"--warmup-steps {warmup_steps} leaves no step of --steps {cfg.steps} for the steady state; "
                f"use --warmup-steps {cfg.steps - 1}{' or fewer' if cfg.steps > 1 else ''}, or more --steps."
            )
        prepare_out(out)
        _apply_threads(threads)
        with _sharding(workers, scheduler) as cluster:  # started only once the configuration is valid
            if cluster is not None:
                cfg = dataclasses.replace(cfg, workers=len(cluster.workers))
            an, path = _scale_sweep(cfg, out, warmup_steps, no_progress, cluster)
    _print_scale(an, path)


def _scale_sweep(cfg, out, warmup_steps, no_progress, cluster):
    from .report import analyse, write_report
    from .sweep import machine_info, run_sweep

    solved = "" if cfg.solvers == ["exact"] else f" with solvers {', '.join(cfg.solvers)}"
    fixed = "" if cfg.vary == "m" else f" at m = {cfg.m}"
    console.print(f"sweep of {', '.join(cfg.impls)}{solved} over {cfg.vary} = {cfg.grid[0]}..{cfg.grid[-1]}{fixed}, "
                  f"alpha = {', '.join(f'{a:g}' for a in cfg.alphas)}; results in {out}/")
    records = run_sweep(cfg, out, progress=not no_progress, console=console,
                        say=lambda line: console.print(escape(line)))
    machine = machine_info() | ({} if cluster is None else {"cluster": cluster.describe()})
    an = analyse(records, cfg.as_dict(), machine, warmup_steps=warmup_steps)
    return an, write_report(an, out)


def _print_scale(an, path):
    table = Table("alpha", "implementation", "slope", "95% interval", "first step", "fired-count slope",
                  "work slope", "verdict")
    for row in an.rows():
        first = "n/a" if row["first_slope"] is None else f"{row['first_slope']:.3f}"
        if row["slope"] is None:
            table.add_row(f"{row['alpha']:g}", row["impl"], "n/a", "", first, "", "", str(row["reason"]))
            continue
        ws = row["work_slope"]
        fs = row["fired_slope"]
        table.add_row(f"{row['alpha']:g}", row["impl"], f"{row['slope']:.3f}",
                      f"[{row['low']:.3f}, {row['high']:.3f}]", first,
                      "n/a" if fs is None else f"{fs:.3f}", "n/a" if ws is None else f"{ws:.3f}", row["verdict"])
    console.print(table)
    for (alpha, impl), x in sorted(an.cheaper_from.items()):
        console.print(f"{impl} at alpha={alpha:g}: cheaper than the exact solve "
                      + (f"from {an.axis} = {x} on" if x is not None else "at no measured point onward"))
    for impl, alpha, x, reason in an.skipped:
        console.print(f"[yellow]skipped[/] {impl} alpha={alpha:g} {an.axis}={x}: {escape(reason)}")
    console.print(f"report: {path}  plot: {path.parent / 'scaling.png'}")


@cli.command()
@click.option("--quick", is_flag=True, help="Small sizes (m up to 2^14, n = d = 16; seconds). Default: m up to 2^20, n = d = 32.")
@click.option("--impl", default="band", show_default=True, help="Implementation that trains (any registered one).")
@click.option("--alpha", "alphas", type=float, multiple=True, help="Alpha(s) [default: 0.24 and 0.5].")
@click.option("--m-max", type=SIZE, default=None,
              help="Widest width (the grid goes on by doubling from the mode's smallest); with --impl band-implicit "
                   "and --init sampled up to 2**36 and beyond.")
@_INIT_OPTION
@_DATA_OPTION
@click.option("--out", "out", type=click.Path(file_okay=False), default="reports/proofs", show_default=True)
def proofs(quick, impl, alphas, m_max, init, data, out):
    """Check the papers' statements numerically: a table, proofs.json and plots.

    Exit status is 0 even when a statement fails: a failure is a finding, reported
    plainly. Errors (non-zero exit) are for bad input only.
    """
    from sublin_bench import proofs_check
    from sublin_bench.proofs_check.plots import plot_alpha

    from .runner import check_memory as check_memory_for
    from .sweep import prepare_out

    alphas = list(dict.fromkeys(float(a) for a in alphas)) or [0.24, 0.5]
    for a in alphas:
        ProblemSpec(m=2, n=1, d=1, alpha=a)
    outdir = prepare_out(out)  # before measuring: a directory that cannot be written fails now
    ok, reason = registry.available(impl)
    if not ok:
        from .errors import UnavailableError

        raise UnavailableError(f"implementation {impl!r} is not available here: {reason}")
    import dataclasses

    sizes = proofs_check.QUICK if quick else proofs_check.FULL
    if m_max is not None:
        if m_max < 4 * sizes.ms[0]:
            raise click.UsageError(f"--m-max must be at least {4 * sizes.ms[0]} (three widths from {sizes.ms[0]}).")
        ms, m = [], sizes.ms[0]
        while m <= m_max:
            ms.append(m)
            m *= 2
        sizes = dataclasses.replace(sizes, ms=tuple(ms))
    sizes = dataclasses.replace(sizes, init=init, data=data, d=_dimension(data, None) if data != "sphere" else sizes.d)
    for a in alphas:
        check_memory_for(impl, ProblemSpec(m=sizes.m, n=sizes.n, d=sizes.d, alpha=a, seed=sizes.seed, init=init,
                                           data=data))
    mode = ("quick" if quick else "full") + (f", m up to {sizes.m}" if m_max else "") + (
        f", {init} init" if init != "plain" else "") + (f", data {data}" if data != "sphere" else "")
    with console.status("measuring") as status:
        results = proofs_check.run_all(impl, alphas, sizes, progress=lambda s: status.update(f"measuring {s}"))
    table = Table("alpha", "statement", "measured", "bound", "verdict",
                  title=f"proofs_check ({mode}, {impl}, m = {sizes.ms[0]}..{sizes.m})")
    for r in results:
        style = {"holds": "green", "fails": "bold red"}.get(r.verdict, "yellow")
        table.add_row(f"{r.parameters.get('alpha'):g}", r.key, r.detail, _bound_text(r), f"[{style}]{r.verdict}[/]")
    console.print(table)
    from .provenance import provenance

    payload = {"impl": impl, "mode": mode, "sizes": sizes.__dict__,
               "results": [r.as_dict() for r in results], "provenance": provenance()}
    (outdir / "proofs.json").write_text(json.dumps(payload, indent=2))
    title = f"proofs ({mode}), implementation {impl}, n={sizes.n}, d={sizes.d}"
    for a in alphas:
        plot_alpha(results, a, outdir / f"proofs_alpha{a:g}.png", title=title)
    failing = [r for r in results if r.verdict == "fails"]
    console.print(f"{len(results) - len(failing)} of {len(results)} statements hold or are informational; "
                  f"{len(failing)} fail. Written to {outdir}/ (proofs.json, proofs_alpha*.png).")


def _bound_text(r) -> str:
    parts = []
    for k, v in r.bound.items():
        if isinstance(v, dict):
            continue
        parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    return ", ".join(parts)


def main():  # console-script entry point
    cli(prog_name="sublin-bench")


if __name__ == "__main__":
    main()
