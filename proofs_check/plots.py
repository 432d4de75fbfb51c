"""The pictures a reader would rather look at than read."""

from __future__ import annotations

import numpy as np


def _readable_log_y(ax) -> None:
    """Major ticks at 1, 2 and 5 times the powers of ten, labelled in plain numbers, no
    minor labels: a log axis spanning less than a decade otherwise shows no major tick, and
    its minor labels pile up."""
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:.3g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def plot_alpha(results, alpha: float, path, *, title: str = "") -> None:
    """Write :func:`alpha_figure` to ``path``."""
    import matplotlib.pyplot as plt

    fig = alpha_figure(results, alpha, title=title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def alpha_figure(results, alpha: float, *, title: str = ""):
    """Four panels for one alpha: fired count against m (with m Q(b) and m^(1-alpha)),
    residual per step, lambda_min(G(t)) / lambda per step, movement against m.

    ``title`` names the run (mode, implementation, n and d); alpha is added to it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {r.key: r for r in results if r.parameters.get("alpha") == alpha}
    fig, ax = plt.subplots(2, 2, figsize=(11, 8))
    r = by.get("sparsity_init")
    if r:
        s = r.series
        a = ax[0, 0]
        a.loglog(s["ms"], s["mean"], "o-", label="measured mean |S_i(0)|", base=2)
        a.loglog(s["ms"], s["expected"], ":", color="k", label="m Q(b)", base=2)
        a.loglog(s["ms"], s["cap"], "--", color="gray", label="m^(1-alpha)", base=2)
        a.set_xlabel("m")
        a.set_ylabel("fired per input")
        a.set_title("sparsity at initialisation")
        a.legend(fontsize=8)
    r = by.get("contraction")
    if r:
        res = np.asarray(r.series["residual"])
        a = ax[0, 1]
        a.semilogy(np.arange(res.size), np.maximum(res, 1e-300), "o-")
        a.set_xlabel("step t")
        a.set_ylabel("||f_t - y||")
        a.set_title(f"residual per step (m = {r.parameters['m']})")
    r = by.get("ntk_eigen")
    if r and r.series.get("ratio"):
        a = ax[1, 0]
        a.plot(r.series["ratio"], "o-", label="lambda_min(G(t)) / lambda")
        a.axhline(0.75, ls="--", color="gray", label="3/4 (t = 0)")
        a.axhline(0.5, ls=":", color="k", label="1/2")
        a.set_xlabel("step t")
        a.set_ylabel("lambda_min(G(t)) / lambda")
        a.set_title("Gram matrix against the NTK eigenvalue")
        a.legend(fontsize=8)
    r = by.get("movement")
    if r:
        s = r.series
        a = ax[1, 1]
        a.loglog(s["ms"], s["movement"], "o-", base=2, label="max_r ||w_r(t) - w_r(0)||")
        ms = np.asarray(s["ms"], dtype=float)
        ref = s["movement"][0] * (ms / ms[0]) ** (alpha - 0.5)
        a.loglog(ms, ref, ":", color="k", base=2, label=f"m^(alpha - 1/2) = m^{alpha - 0.5:+.2f}")
        a.set_xlabel("m")
        a.set_ylabel("max_r ||w_r(t) - w_r(0)|| over the run")
        _readable_log_y(a)
        a.set_title("weight movement")
        a.legend(fontsize=8)
    fig.suptitle(f"{title}, alpha = {alpha:g}" if title else f"proofs_check, alpha = {alpha:g}")
    fig.tight_layout()
    return fig
