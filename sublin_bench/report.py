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

    def rows(self):
        """One dict per (alpha, impl) fit, for tables and JSON."""
        out = []
        for alpha in self.alphas:
            for impl in self.impls:
                fit = self.fits.get((alpha, impl))
                row = {
                    "alpha": alpha, "impl": impl, "fired_slope": self.fired_slope.get(alpha), "nominal": 1 - alpha,
                    "work_slope": self.work_slope.get((alpha, impl)),
                }
                if isinstance(fit, SlopeFit):
                    row |= fit.as_dict() | {"low": fit.low, "high": fit.high, "verdict": verdict(fit)}
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
    alphas = sorted({float(r["alpha"]) for r in records})
    present = {r["impl"] for r in records}
    order = (config or {}).get("impls") or sorted(present, key=lambda s: (s != "dense", s))
    impls = [i for i in order if i in present]
    an = Analysis(config=config or {}, machine=machine or {}, alphas=alphas, impls=impls,
                  warmup_steps=int(warmup_steps))
    groups: dict = defaultdict(lambda: defaultdict(list))
    firsts: dict = defaultdict(lambda: defaultdict(list))
    builds: dict = defaultdict(lambda: defaultdict(list))
    works: dict = defaultdict(lambda: defaultdict(list))
    recalls: dict = defaultdict(lambda: defaultdict(list))
    seen_skips = set()
    for r in records:
        key = (float(r["alpha"]), r["impl"])
        if r.get("status") == "ok":
            times = point_times(r, an.warmup_steps)
            groups[key][int(r["m"])].append(times["steady"])
            firsts[key][int(r["m"])].append(times["first"])
            if r.get("build_seconds") is not None:  # with the sampling of a sampled problem, if any
                builds[key][int(r["m"])].append(float(r["build_seconds"]) + float(r.get("problem_seconds") or 0.0))
            if r.get("work"):
                works[key][int(r["m"])].append(float(np.mean(r["work"])))
            if r.get("recall"):
                recalls[key][int(r["m"])].append(float(np.mean(r["recall"])))
        else:
            s = (r["impl"], float(r["alpha"]), int(r["m"]), r.get("reason", ""))
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
    an.effects = _effects(records, alphas)
    for alpha in alphas:
        ms_all = sorted({m for (a, _), st in an.stats.items() if a == alpha for m in st})
        rng_ms = fit_range(ms_all)
        an.fired_slope[alpha] = fired_count_slope(rng_ms, alpha)
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
    return an


def _effects(records, alphas) -> list[dict]:
    """Per alpha, at the widest measured m: medians over its records of the fired-set
    overlap (measured, expected, expected on the sphere), the Gram condition number at the
    first step, moved neurons and flips per step, and the data's separation and lambda."""
    out = []
    for alpha in alphas:
        ok = [r for r in records if r.get("status") == "ok" and float(r["alpha"]) == alpha and "overlap_mean" in r]
        if not ok:
            continue
        m = max(int(r["m"]) for r in ok)
        at = [r for r in ok if int(r["m"]) == m]

        def med(key, fn=lambda v: v):
            vals = [fn(r[key]) for r in at if r.get(key) is not None]
            return float(np.median(vals)) if vals else None

        out.append({
            "alpha": alpha, "m": m, "data": at[0].get("data", "sphere"),
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
        "| alpha | m | mean overlap of S_i, S_j at t=0 | expected on these inputs | expected on the sphere (same n, d) "
        "| Gram condition, step 1 (largest) | moved / step | flips / step | separation delta | lambda (shifted NTK) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in an.effects:
        lines.append(
            f"| {e['alpha']:g} | {m_label(e['m'])} | {_fmt(e['overlap'], '.4g')} | {_fmt(e['overlap_expected'], '.4g')} | "
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
            where = f"through {name}'s fit at m={m_label(int(m0))}"
            ax.plot(xs, t0 * (xs / m0) ** pred, ":", color="black", lw=1.5,
                    label=f"fired count m·Q(b), slope {pred:.2f}, {where}")
            ax.plot(xs, t0 * (xs / m0) ** 1.0, "--", color="gray", lw=1.0, label=f"slope 1 (linear), {where}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width m")
        ax.set_ylabel("seconds per iteration (steady state)")
        ax.set_title(f"alpha = {alpha:g}  (nominal 1 - alpha = {1 - alpha:.2f})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    cfg = an.config
    fig.suptitle(
        f"scale: per-iteration time of {', '.join(an.impls)}, n={cfg.get('n', '?')}, d={cfg.get('d', '?')}; "
        f"steady state = median of steps {an.warmup_steps + 1}..T of T={cfg.get('steps', '?')} after each build; "
        f"median and quartiles of {cfg.get('repeats', '?')} repeats",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def registry_sublinear(impl: str) -> bool:
    try:
        return bool(registry.get(impl).sublinear)
    except Exception:
        return impl != "dense"


def _fmt(x, spec=".3f"):
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def slope_table(an: Analysis) -> str:
    lines = [
        "| alpha | implementation | slope | 95% t-interval | 95% bootstrap | first-step slope (95%) | fired-count slope "
        "| counted-work slope | 1 - alpha | verdict | fitted m |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in an.rows():
        first = ("n/a" if row["first_slope"] is None
                 else f"{row['first_slope']:.3f} [{row['first_low']:.3f}, {row['first_high']:.3f}]")
        if row["slope"] is None:
            lines.append(f"| {row['alpha']:g} | {row['impl']} | n/a | | | {first} | {_fmt(row['fired_slope'])} | "
                         f"{_fmt(row['work_slope'])} | {row['nominal']:.2f} | no fit: {row['reason']} | |")
            continue
        lines.append(
            f"| {row['alpha']:g} | {row['impl']} | {row['slope']:.3f} | [{_fmt(row['t_low'])}, {_fmt(row['t_high'])}] | "
            f"[{row['boot_low']:.3f}, {row['boot_high']:.3f}] | {first} | {_fmt(row['fired_slope'])} | "
            f"{_fmt(row['work_slope'])} | {row['nominal']:.2f} | "
            f"{row['verdict']} | {m_label(row['m_low'])}..{m_label(row['m_high'])} ({row['points']} points) |"
        )
    return "\n".join(lines)


def timing_table(an: Analysis, alpha: float) -> str:
    ms = sorted({m for (a, _), st in an.stats.items() if a == alpha for m in st})
    head = "| m | " + " | ".join(f"{i} s/iter steady, first (problem + build s)" for i in an.impls) + " | " + " | ".join(
        f"speedup {i}" for i in an.impls if i != "dense") + " |"
    lines = [head, "|" + "---|" * (1 + len(an.impls) + len([i for i in an.impls if i != "dense"]))]
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
        for impl in an.impls:
            if impl == "dense":
                continue
            s = an.speedup.get((alpha, impl), {}).get(m)
            cells.append(f"{s:.1f}x" if s is not None else "–")
        lines.append(f"| {m_label(m)} | " + " | ".join(cells) + " |")
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
        "Slope of log(per-iteration time) on log(m) over the asymptotic part of the grid "
        "(m >= sqrt(m_min m_max), at least 3 points), with the 95% t-interval of the regression "
        "and a 95% percentile bootstrap over repeats. The fired-count slope is that of m Q(b(m)) "
        "over the same widths; the counted-work slope is that of the implementation's own work counter "
        "(pair evaluations and index-node visits per step: machine independent). Verdict: *linear* if the wider interval's lower end is >= 0.85, "
        "*sublinear* if its upper end is < 0.9, else *inconclusive*.",
        "",
        slope_table(an),
        "",
        "## Timings and speedup over dense",
        "",
    ]
    if an.recall:
        parts += ["Approximate implementations (" + ", ".join(sorted({i for _, i in an.recall})) + ") also show "
                  "their *recall*: the mean over the measured states of |found ∩ fired| / |fired|, against the "
                  "true fired sets at their own weights (measured between the timed steps). Their speedups "
                  "are not those of the same computation.", ""]
    for alpha in an.alphas:
        parts += [f"### alpha = {alpha:g}", "", timing_table(an, alpha), ""]
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
        parts += [f"- {impl}, alpha={alpha:g}, m={m_label(m)}: {reason}" for impl, alpha, m, reason in an.skipped]
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
