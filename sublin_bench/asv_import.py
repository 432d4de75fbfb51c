"""Reading asv results into sweep records, so ``scale --from-asv`` gives the same fits,
plot and report as a sweep."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from .errors import ConfigError

#: Parameter grids of the asv suite (benchmarks/benchmarks.py), chosen by the environment
#: variable SUBLIN_BENCH_ASV_PROFILE. The lists never depend on what is installed: an
#: unavailable implementation is skipped in setup.
ASV_PROFILES = {
    "fast": {"ms": [2**10, 2**12], "alphas": [0.24, 0.5]},
    "default": {"ms": [2**14, 2**16, 2**18], "alphas": [0.24, 0.5]},
    "large": {"ms": [2**16, 2**18, 2**20, 2**22], "alphas": [0.24, 0.5]},
}
ASV_IMPLS = ["dense", "tree", "band", "cupy-dense", "cupy"]
ASV_N = ASV_D = 32
ASV_STEPS = 3


def asv_profile() -> dict:
    name = os.environ.get("SUBLIN_BENCH_ASV_PROFILE", "default")
    if name not in ASV_PROFILES:
        raise ConfigError(
            f"SUBLIN_BENCH_ASV_PROFILE={name!r} is not one of {', '.join(ASV_PROFILES)}."
        )
    return ASV_PROFILES[name]


#: The asv benchmark whose values are per-iteration seconds (see benchmarks/benchmarks.py).
STEP_BENCHMARK = "benchmarks.Step.time_step"
BUILD_BENCHMARK = "benchmarks.Build.time_build"


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read asv result file {path}: {exc}") from None


def _columns(data: dict, entry) -> dict:
    cols = data.get("result_columns")
    if cols and isinstance(entry, list):
        return dict(zip(cols, entry))
    return entry if isinstance(entry, dict) else {"result": entry}


def load_asv_results(directory) -> tuple[list[dict], dict]:
    """Records (one per parameter combination and sample) from every result file under
    an asv ``results`` directory (``results/<machine>/<commit>-<env>.json``).

    Uses the samples when asv recorded them (``--record-samples``), else the result
    value, which asv reports as the median.
    """
    directory = Path(directory)
    files = [p for p in directory.rglob("*.json") if p.name not in ("machine.json", "benchmarks.json")]
    records = []
    info = {}
    for path in sorted(files):
        data = _load(path)
        results = data.get("results", {})
        if STEP_BENCHMARK not in results:
            continue
        step = _columns(data, results[STEP_BENCHMARK])
        build = _columns(data, results.get(BUILD_BENCHMARK, {})) if BUILD_BENCHMARK in results else {}
        params = step.get("params") or []
        combos = list(itertools.product(*params)) if params else []
        values = step.get("result") or []
        samples = step.get("samples") or [None] * len(values)
        bvalues = build.get("result") or [None] * len(values)
        for ci, (combo, value, smp) in enumerate(zip(combos, values, samples)):
            impl, m, alpha = (json.loads(p) if isinstance(p, str) and p[:1] in "0123456789-" else p.strip("'\"")
                              for p in combo)
            base = {
                "impl": str(impl), "m": int(m), "alpha": float(alpha), "repeat": 0,
                "source": str(path.relative_to(directory)), "commit": data.get("commit_hash"),
            }
            if value is None or (isinstance(value, float) and value != value):
                base |= {"status": "skipped", "reason": "asv: not run, failed, or skipped (unavailable)"}
                records.append(base)
                continue
            bsec = bvalues[ci] if ci < len(bvalues) else None
            if isinstance(bsec, float) and bsec != bsec:
                bsec = None
            for rep, v in enumerate(smp if smp else [value]):
                records.append(base | {"repeat": rep, "status": "ok", "per_iter_seconds": float(v),
                                       "build_seconds": bsec})
        info = {"source": "asv", "results": str(directory), "commit": data.get("commit_hash"),
                "machine": (data.get("params") or {}).get("machine")}
    if not records:
        raise ConfigError(
            f"no {STEP_BENCHMARK} results under {directory}; run `asv run --python=same "
            "--set-commit-hash $(git rev-parse HEAD)` first (see README.md)."
        )
    info |= {"n": ASV_N, "d": ASV_D, "steps": ASV_STEPS, "repeats": "asv samples"}
    return records, info
