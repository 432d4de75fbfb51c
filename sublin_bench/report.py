"""From sweep records to the report directory: ``report.md`` and ``scaling.png``."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import registry
from .scaling import SlopeFit, fired_count_slope, fit_range, fit_slope, verdict
from .sweep import m_label

__all__ = ["Analysis", "analyse", "write_report", "plot_scaling"]


#: How the varied axis is named in tables and plots.
AXIS_NAMES = {"m": "width m", "n": "inputs n", "d": "input dimension d"}


def variant(rec: dict) -> str:
    """The label of a record's implementation and solver: the implementation's name for
    the exact solve, ``impl+solver`` for another (``band+sketch``)."""
    solver = rec.get("solver", "exact")
    return rec["impl"] if solver == "exact" else f"{rec['impl']}+{solver}"


def _impl_of(label: str) -> str:
    return label.split("+", 1)[0]


def point_times(rec: dict, warmup_steps: int) -> dict:
    """The timing metrics of one measured record (seconds per iteration): the steady state
    (median of the steps after the first ``warmup_steps``: the headline) and the first
    step after the build. Records without per-step times (asv's) give their per-iteration
    time for both."""
    steps = rec.get("step_seconds") or []
    if not steps:
        mean = float(rec["per_iter_seconds"])
        return {"steady": mean, "first": mean}
    later = steps[warmup_steps:] or steps[-1:]
    return {"steady": float(np.median(later)), "first": float(steps[0])}


#: Fixed colours of the built-in implementations, the same in every figure; any other
#: name gets a colour from a hash of its name (stable across runs and machines).
_COLORS = {
    "dense": "#1f77b4", "tree": "#ff7f0e", "band": "#2ca02c", "cupy-dense": "#9467bd", "cupy": "#8c564b",
}
_SPARE = ["#d62728", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31"]


def impl_color(name: str) -> str:
    """The colour of implementation ``name`` in every figure."""
    import zlib

    if "+" in name:  # a solver other than exact: a colour of its own, the same in every figure
        return _SPARE[zlib.crc32(name.encode()) % len(_SPARE)]
    return _COLORS.get(name) or _SPARE[zlib.crc32(name.encode()) % len(_SPARE)]


@dataclass
class Analysis:
    config: dict
    machine: dict
    alphas: list
    impls: list
    warmup_steps: int = 1
    first: dict = field(default_factory=dict)  # (alpha, impl) -> SlopeFit | str, of the first step
    first_stats: dict = field(default_factory=dict)  # (alpha, impl) -> {m: median first-step seconds}
    stats: dict = field(default_factory=dict)  # (alpha, impl) -> {m: (median, q25, q75, count)}, steady state
    samples: dict = field(default_factory=dict)  # (alpha, impl) -> {m: [steady-state seconds]}
    builds: dict = field(default_factory=dict)  # (alpha, impl) -> {m: median build seconds}
    fits: dict = field(default_factory=dict)  # (alpha, impl) -> SlopeFit | str (why none)
    work_slope: dict = field(default_factory=dict)  # (alpha, impl) -> slope of counted work per step
    fired_slope: dict = field(default_factory=dict)  # alpha -> slope of m Q(b) on the fit range
    speedup: dict = field(default_factory=dict)  # (alpha, impl) -> {m: dense median / impl median}
    skipped: list = field(default_factory=list)  # (impl, alpha, m, reason)
    effects: list = field(default_factory=list)  # per alpha at its widest m: what the data does (data_table)
    recall: dict = field(default_factory=dict)  # (alpha, impl) -> {m: median mean recall}, approximate impls
    #: The axis the sweep varied ("m", "n" or "d"); every "m" above is then a value of it.
    axis: str = "m"
    vs_exact: dict = field(default_factory=dict)  # (alpha, impl+solver) -> {x: exact median / its median}
    cheaper_from: dict = field(default_factory=dict)  # (alpha, impl+solver) -> smallest x from which it beats exact
    regime: dict = field(default_factory=dict)  # (alpha, x) -> n Q(b), the inputs a neuron fires on
    solver_iterations: dict = field(default_factory=dict)  # (alpha, impl+solver) -> {x: median iterations}

    def rows(self):
        """One dict per (alpha, impl) fit, for tables and JSON."""
        out = []
        for alpha in self.alphas:
            for impl in self.impls:
                fit = self.fits.get((alpha, impl))
                row = {
                    "alpha": alpha, "impl": impl, "fired_slope": self.fired_slope.get(alpha),
                    "nominal": 1 - alpha if self.axis == "m" else None,
                    "work_slope": self.work_slope.get((alpha, impl)), "axis": self.axis,
                }
                if isinstance(fit, SlopeFit):
                    row |= fit.as_dict() | {"low": fit.low, "high": fit.high,
                                            "verdict": verdict(fit) if self.axis == "m" else "-"}
                else:
                    row |= {"slope": None, "verdict": "no fit", "reason": fit}
                first = self.first.get((alpha, impl))
                row["first_slope"] = first.slope if isinstance(first, SlopeFit) else None
                row["first_low"] = first.low if isinstance(first, SlopeFit) else None
                row["first_high"] = first.high if isinstance(first, SlopeFit) else None
                out.append(row)
        return out


def analyse(records: list[dict], config: dict | None = None, machine: dict | None = None, *,
            warmup_steps: int = 1) -> Analysis:
    """Group the records, take medians and quartiles, fit slopes, compute speedups.

    Slopes and speedups use the steady state (median of each point's steps after the first
    ``warmup_steps``); the first step after the build is fitted too (``Analysis.first``).
    """
    axis = (config or {}).get("vary") or "m"
    alphas = sorted({float(r["alpha"]) for r in records})
    present = {variant(r) for r in records}
    cfg_impls = (config or {}).get("impls")
    order = ([i if sv == "exact" else f"{i}+{sv}" for i in cfg_impls for sv in (config.get("solvers") or ["exact"])]
             if cfg_impls else sorted(present, key=lambda s: (s != "dense", s)))
    impls = [i for i in order if i in present] + sorted(present - set(order))
    an = Analysis(config=config or {}, machine=machine or {}, alphas=alphas, impls=impls,
                  warmup_steps=int(warmup_steps), axis=axis)
    iterations: dict = defaultdict(lambda: defaultdict(list))
    regime: dict = defaultdict(list)
    groups: dict = defaultdict(lambda: defaultdict(list))
    firsts: dict = defaultdict(lambda: defaultdict(list))
    builds: dict = defaultdict(lambda: defaultdict(list))
    works: dict = defaultdict(lambda: defaultdict(list))
    recalls: dict = defaultdict(lambda: defaultdict(list))
    seen_skips = set()
    for r in records:
        key = (float(r["alpha"]), variant(r))
        x = int(r[axis])
        if r.get("status") == "ok":
            times = point_times(r, an.warmup_steps)
            groups[key][x].append(times["steady"])
            firsts[key][x].append(times["first"])
            if r.get("build_seconds") is not None:  # with the sampling of a sampled problem, if any
                builds[key][x].append(float(r["build_seconds"]) + float(r.get("problem_seconds") or 0.0))
            if r.get("work"):
                works[key][x].append(float(np.mean(r["work"])))
            if r.get("recall"):
                recalls[key][x].append(float(np.mean(r["recall"])))
            if r.get("solver_iterations") and r.get("solver", "exact") != "exact":
                iterations[key][x].append(float(np.median(r["solver_iterations"])))
            if r.get("n_q") is not None:
                regime[(key[0], x)].append(float(r["n_q"]))
        else:
            s = (variant(r), float(r["alpha"]), x, r.get("reason", ""))
            if s[:3] not in seen_skips:
                seen_skips.add(s[:3])
                an.skipped.append(s)
    for key, by_m in groups.items():
        an.samples[key] = {m: v for m, v in sorted(by_m.items())}
        an.stats[key] = {
            m: (float(np.median(v)), float(np.percentile(v, 25)), float(np.percentile(v, 75)), len(v))
            for m, v in sorted(by_m.items())
        }
        an.builds[key] = {m: float(np.median(v)) for m, v in sorted(builds[key].items())}
        if recalls.get(key):
            an.recall[key] = {m: float(np.median(v)) for m, v in sorted(recalls[key].items())}
        if iterations.get(key):
            an.solver_iterations[key] = {m: float(np.median(v)) for m, v in sorted(iterations[key].items())}
    an.regime = {k: float(np.median(v)) for k, v in sorted(regime.items())}
    an.effects = _effects(records, alphas, axis)
    for alpha in alphas:
        ms_all = sorted({m for (a, _), st in an.stats.items() if a == alpha for m in st})
        rng_ms = fit_range(ms_all)
        an.fired_slope[alpha] = fired_count_slope(rng_ms, alpha) if axis == "m" else None
        for impl in impls:
            samples = an.samples.get((alpha, impl), {})
            use = [m for m in rng_ms if m in samples]
            try:
                an.fits[(alpha, impl)] = fit_slope(samples, only=use)
            except ValueError as exc:
                an.fits[(alpha, impl)] = str(exc)
            fs = {m: v for m, v in firsts.get((alpha, impl), {}).items()}
            an.first_stats[(alpha, impl)] = {m: float(np.median(v)) for m, v in sorted(fs.items())}
            try:
                an.first[(alpha, impl)] = fit_slope(fs, only=[m for m in use if m in fs])
            except ValueError as exc:
                an.first[(alpha, impl)] = str(exc)
            wk = works.get((alpha, impl), {})
            wuse = [m for m in use if m in wk and np.median(wk[m]) > 0]
            if len(wuse) >= 2:
                x = np.log(wuse)
                an.work_slope[(alpha, impl)] = float(np.polyfit(x, np.log([np.median(wk[m]) for m in wuse]), 1)[0])
            dense = an.stats.get((alpha, "dense"), {})
            mine = an.stats.get((alpha, impl), {})
            an.speedup[(alpha, impl)] = {m: dense[m][0] / mine[m][0] for m in mine if m in dense}
            if "+" in impl:
                exact = an.stats.get((alpha, _impl_of(impl)), {})
                ratio = {m: exact[m][0] / mine[m][0] for m in mine if m in exact}
                an.vs_exact[(alpha, impl)] = ratio
                xs = sorted(ratio)
                # the smallest x from which this solver is cheaper at every measured x
                from_x = None
                for x in reversed(xs):
                    if ratio[x] <= 1:
                        break
                    from_x = x
                an.cheaper_from[(alpha, impl)] = from_x
    return an


def _effects(records, alphas, axis="m") -> list[dict]:
    """Per alpha, at the largest measured point of the axis: medians over its records of the fired-set
    overlap (measured, expected, expected on the sphere), the Gram condition number at the
    first step, moved neurons and flips per step, and the data's separation and lambda."""
    out = []
    for alpha in alphas:
        ok = [r for r in records if r.get("status") == "ok" and float(r["alpha"]) == alpha and "overlap_mean" in r]
        if not ok:
            continue
        x = max(int(r[axis]) for r in ok)
        at = [r for r in ok if int(r[axis]) == x]
        m = int(at[0]["m"])

        def med(key, fn=lambda v: v):
            vals = [fn(r[key]) for r in at if r.get(key) is not None]
            return float(np.median(vals)) if vals else None

        out.append({
            "alpha": alpha, "m": m, "n": int(at[0]["n"]), "d": int(at[0]["d"]), "data": at[0].get("data", "sphere"),
            "overlap": med("overlap_mean"), "overlap_expected": med("overlap_expected"),
            "overlap_sphere": med("overlap_sphere_expected"),
            "gram_condition": med("gram_condition", lambda v: v[0]),
            "gram_condition_max": med("gram_condition", max),
            "moved": med("moved", np.mean), "flips": med("flips", np.mean),
            "separation": med("separation"), "lambda": med("ntk_lambda"),
        })
    return out


def data_table(an: Analysis) -> str:
    lines = [
        "| alpha | m, n, d | mean overlap of S_i, S_j at t=0 | expected on these inputs | expected on the sphere (same n, d) "
        "| Gram condition, step 1 (largest) | moved / step | flips / step | separation delta | lambda (shifted NTK) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in an.effects:
        lines.append(
            f"| {e['alpha']:g} | {m_label(e['m'])}, {e['n']}, {e['d']} | {_fmt(e['overlap'], '.4g')} | {_fmt(e['overlap_expected'], '.4g')} | "
            f"{_fmt(e['overlap_sphere'], '.4g')} | {_fmt(e['gram_condition'], '.3g')} ({_fmt(e['gram_condition_max'], '.3g')}) | "
            f"{_fmt(e['moved'], '.4g')} | {_fmt(e['flips'], '.4g')} | {_fmt(e['separation'], '.3g')} | "
            f"{_fmt(e['lambda'], '.3g')} |"
        )
    return "\n".join(lines)


def plot_scaling(an: Analysis, path) -> None:
    """Write ``scaling.png`` (see :func:`scaling_figure`)."""
    import matplotlib.pyplot as plt

    fig = scaling_figure(an)
    panels = ", ".join(f"alpha={a:g}" for a in an.alphas)
    fig.savefig(path, dpi=110, metadata={"Description": f"sublin-bench scaling; panels: {panels}"})
    plt.close(fig)


def scaling_figure(an: Analysis):
    """One log-log panel per alpha, points with quartile bars, fitted lines over the
    fitted range, and two reference lines (the fired count's slope and slope 1) drawn
    through the first sublinear implementation's fit at its smallest fitted width, and
    labelled so. Each implementation has the same colour in every figure
    (:func:`impl_color`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = max(1, len(an.alphas))
    fig, axes = plt.subplots(1, k, figsize=(5.6 * k, 4.8), squeeze=False, sharey=False)
    for ax, alpha in zip(axes[0], an.alphas):
        anchor = None
        for impl in an.impls:
            st = an.stats.get((alpha, impl))
            if not st:
                continue
            ms = np.array(sorted(st))
            med = np.array([st[m][0] for m in ms])
            lo = med - np.array([st[m][1] for m in ms])
            hi = np.array([st[m][2] for m in ms]) - med
            c = impl_color(impl)
            fit = an.fits.get((alpha, impl))
            label = impl
            if isinstance(fit, SlopeFit):
                label += f" (slope {fit.slope:.2f} [{fit.low:.2f}, {fit.high:.2f}])"
                xs = np.array([fit.m_low, fit.m_high], dtype=float)
                ax.plot(xs, np.exp(fit.intercept) * xs**fit.slope, "-", color=c, lw=1.2, alpha=0.8)
                if anchor is None and registry_sublinear(impl):
                    anchor = (impl, fit.m_low, np.exp(fit.intercept) * fit.m_low**fit.slope, fit.m_high)
            ax.errorbar(ms, med, yerr=[lo, hi], fmt="o", ms=4, color=c, capsize=2, label=label)
        pred = an.fired_slope.get(alpha)
        if anchor is not None and pred is not None and np.isfinite(pred):
            name, m0, t0, m1 = anchor
            xs = np.array([m0, m1], dtype=float)
            where = f"through {name}'s fit at {an.axis}={m_label(int(m0))}"
            ax.plot(xs, t0 * (xs / m0) ** pred, ":", color="black", lw=1.5,
                    label=f"fired count m·Q(b), slope {pred:.2f}, {where}")
            ax.plot(xs, t0 * (xs / m0) ** 1.0, "--", color="gray", lw=1.0, label=f"slope 1 (linear), {where}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(AXIS_NAMES.get(an.axis, an.axis))
        ax.set_ylabel("seconds per iteration (steady state)")
        ax.set_title(f"alpha = {alpha:g}  (nominal 1 - alpha = {1 - alpha:.2f})" if an.axis == "m"
                     else f"alpha = {alpha:g}, m = {m_label(int(an.config.get('m', 0) or 1))}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    cfg = an.config
    fixed = ", ".join(f"{ax}={cfg.get(ax, '?')}" for ax in ("m", "n", "d") if ax != an.axis and (ax != "m" or an.axis != "m"))
    fig.suptitle(
        f"scale: per-iteration time of {', '.join(an.impls)}, {fixed}; "
        f"steady state = median of steps {an.warmup_steps + 1}..T of T={cfg.get('steps', '?')} after each build; "
        f"median and quartiles of {cfg.get('repeats', '?')} repeats",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def registry_sublinear(impl: str) -> bool:
    try:
        return bool(registry.get(_impl_of(impl)).sublinear)
    except Exception:
        return impl != "dense"


def _fmt(x, spec=".3f"):
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def slope_table(an: Analysis) -> str:
    lines = [
        "| alpha | implementation | slope | 95% t-interval | 95% bootstrap | first-step slope (95%) | fired-count slope "
        f"| counted-work slope | 1 - alpha | verdict | fitted {an.axis} |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in an.rows():
        first = ("n/a" if row["first_slope"] is None
                 else f"{row['first_slope']:.3f} [{row['first_low']:.3f}, {row['first_high']:.3f}]")
        if row["slope"] is None:
            lines.append(f"| {row['alpha']:g} | {row['impl']} | n/a | | | {first} | {_fmt(row['fired_slope'])} | "
                         f"{_fmt(row['work_slope'])} | {_fmt(row['nominal'], '.2f')} | no fit: {row['reason']} | |")
            continue
        lines.append(
            f"| {row['alpha']:g} | {row['impl']} | {row['slope']:.3f} | [{_fmt(row['t_low'])}, {_fmt(row['t_high'])}] | "
            f"[{row['boot_low']:.3f}, {row['boot_high']:.3f}] | {first} | {_fmt(row['fired_slope'])} | "
            f"{_fmt(row['work_slope'])} | {_fmt(row['nominal'], '.2f')} | "
            f"{row['verdict']} | {m_label(row['m_low'])}..{m_label(row['m_high'])} ({row['points']} points) |"
        )
    return "\n".join(lines)


def timing_table(an: Analysis, alpha: float) -> str:
    ms = sorted({m for (a, _), st in an.stats.items() if a == alpha for m in st})
    base = [i for i in an.impls if i != "dense" and "+" not in i] if "dense" in an.impls else []
    versus = [i for i in an.impls if (alpha, i) in an.vs_exact]
    cols = [an.axis, *(f"{i} s/iter steady, first (problem + build s)" for i in an.impls),
            *(f"speedup {i}" for i in base), *(f"{i} vs {_impl_of(i)} exact" for i in versus)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for m in ms:
        cells = []
        for impl in an.impls:
            st = an.stats.get((alpha, impl), {})
            b = an.builds.get((alpha, impl), {}).get(m)
            fs = an.first_stats.get((alpha, impl), {}).get(m)
            core = f"{st[m][0]:.4g}, {fs:.4g}" if m in st and fs is not None else (f"{st[m][0]:.4g}" if m in st else "–")
            cell = f"{core} ({b:.3g})" if m in st and b is not None else core
            rec = an.recall.get((alpha, impl), {}).get(m)
            cells.append(cell if rec is None else f"{cell}, recall {rec:.3f}")
            its = an.solver_iterations.get((alpha, impl), {}).get(m)
            if its is not None:
                cells[-1] += f", {its:.0f} it"
        for impl in base:
            s = an.speedup.get((alpha, impl), {}).get(m)
            cells.append(f"{s:.1f}x" if s is not None else "–")
        for impl in versus:
            s = an.vs_exact[(alpha, impl)].get(m)
            cells.append(f"{s:.2f}x" if s is not None else "–")
        lines.append(f"| {m_label(m)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: ``n Q(b)`` above which a point is out of the sublinear regime (README, "Scaling in n and d").
REGIME_LIMIT = 0.1


def _slope_text(an: Analysis) -> str:
    if an.axis == "m":
        return ("Slope of log(per-iteration time) on log(m) over the asymptotic part of the grid "
                "(m >= sqrt(m_min m_max), at least 3 points), with the 95% t-interval of the regression "
                "and a 95% percentile bootstrap over repeats. The fired-count slope is that of m Q(b(m)) "
                "over the same widths; the counted-work slope is that of the implementation's own work counter "
                "(pair evaluations and index-node visits per step: machine independent). Verdict: *linear* if the "
                "wider interval's lower end is >= 0.85, *sublinear* if its upper end is < 0.9, else *inconclusive*.")
    x = an.axis
    return (f"Slope of log(per-iteration time) on log({x}) at fixed m = {an.config.get('m')} over the upper part "
            f"of the grid ({x} >= sqrt({x}_min {x}_max), at least 3 points), with the 95% t-interval of the "
            "regression and a 95% percentile bootstrap over repeats; the counted-work slope is that of the "
            "implementation's own work counter. What to hold them against: the fired pairs K = n m Q(b) grow "
            "like n (slope 1 in n, 0 in d); the exact solve adds the counts, sum over neurons of c_r^2 "
            "(up to n^2 m Q(b)^2), the n x n Gram and its n^3 Cholesky; a product J v or J^T u costs K d. "
            "No verdict is drawn: the sublinear/linear verdict is about m.")


def solver_text(an: Analysis) -> str:
    lines = [
        "Solvers other than exact (`impl+solver`) are timed beside the same implementation's exact solve; "
        "'vs exact' is the exact step's median time over theirs (above 1: cheaper than exact), 'it' the median "
        "iterations per step. Cheaper than exact from:", "",
    ]
    for (alpha, impl), x in sorted(an.cheaper_from.items()):
        ratio = an.vs_exact[(alpha, impl)]
        where = (f"{an.axis} = {m_label(x)} on (every measured point from there)" if x is not None
                 else "no measured point onward")
        lines.append(f"- alpha {alpha:g}, {impl}: {where}; ratios "
                     + ", ".join(f"{m_label(m)}: {v:.2f}x" for m, v in sorted(ratio.items())))
    return "\n".join(lines)


def regime_text(an: Analysis) -> str:
    lines = [
        "## Regime", "",
        "n Q(b) is the expected number of inputs one neuron fires on at initialisation (Q(b) = P(N(0,1) > b)); "
        "1 - exp(-n Q(b)) is the share of all m neurons that fire for some input. The method is sublinear in m "
        f"only while n Q(b) is well below 1; points with n Q(b) > {REGIME_LIMIT:g} are marked *outside*: there "
        "every step touches a constant share of the m neurons, whatever the index.", "",
        f"| alpha | {an.axis} | n Q(b) | share of neurons touched | regime |", "|---|---|---|---|---|",
    ]
    for (alpha, x), nq in sorted(an.regime.items()):
        share = -np.expm1(-nq)
        lines.append(f"| {alpha:g} | {m_label(x)} | {nq:.3g} | {share:.3g} | "
                     f"{'outside' if nq > REGIME_LIMIT else 'sublinear'} |")
    return "\n".join(lines)


def write_report(an: Analysis, directory, *, source: str = "sublin-bench scale") -> Path:
    """Write ``report.md`` and ``scaling.png`` into ``directory``; return the report path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plot_scaling(an, directory / "scaling.png")
    cfg, mach = an.config, an.machine
    parts = [
        "# sublin-bench scaling report",
        "",
        f"Source: `{source}`. Every step after a fresh build is timed (the index build separately). "
        f"Per-iteration time is the *steady state*: the median of the steps after the first "
        f"{an.warmup_steps} (`--warmup-steps`); the *first step* after the build is fitted beside it, "
        "since it costs more (caches cold, first use of the new index) and the lazy regime converges "
        "within a few steps. Each point is the median (and quartiles) over repeats. Implementations "
        "were measured side by side, interleaved.",
        "",
        "![scaling](scaling.png)",
        "",
        "## Cost exponents",
        "",
        _slope_text(an),
        "",
        slope_table(an),
        "",
        "## Timings and speedup over dense" + (" and against the exact solve" if an.vs_exact else ""),
        "",
    ]
    if an.vs_exact:
        parts += [solver_text(an), ""]
    if an.recall:
        parts += ["Approximate implementations (" + ", ".join(sorted({i for _, i in an.recall})) + ") also show "
                  "their *recall*: the mean over the measured states of |found ∩ fired| / |fired|, against the "
                  "true fired sets at their own weights (measured between the timed steps). Their speedups "
                  "are not those of the same computation.", ""]
    for alpha in an.alphas:
        parts += [f"### alpha = {alpha:g}", "", timing_table(an, alpha), ""]
    if an.regime and (an.axis != "m" or max(an.regime.values()) > REGIME_LIMIT):
        parts += [regime_text(an), ""]
    if an.effects:
        parts += [
            f"## What the data does to the method (data: {an.effects[0]['data']})", "",
            "At each alpha's widest measured width, medians over its points. Overlap: the mean of "
            "|S_i ∩ S_j| over pairs i != j at t = 0, against its expectation m P(z_i > b, z_j > b) for these inputs' "
            "correlations and for points on the sphere of the same n and d: correlated inputs fire the same neurons, "
            "which makes the Gram matrix worse conditioned. Separation delta = min over pairs of min(||x_i - x_j||, "
            "||x_i + x_j||); lambda = the least eigenvalue of the shifted NTK at b.", "",
            data_table(an), "",
        ]
    if an.skipped:
        parts += ["## Skipped points", ""]
        parts += [f"- {impl}, alpha={alpha:g}, {an.axis}={m_label(m)}: {reason}" for impl, alpha, m, reason in an.skipped]
        parts.append("")
    parts += ["## Configuration", "", "```"]
    parts += [f"{k}: {v}" for k, v in cfg.items()]
    parts += [f"warmup_steps: {an.warmup_steps}"]
    parts += ["```", "", "## Provenance and machine", "", "```"]
    parts += [f"{k}: {v}" for k, v in mach.items()]
    parts += ["```", ""]
    path = directory / "report.md"
    path.write_text("\n".join(parts))
    return path
