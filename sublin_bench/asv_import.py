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


WORK_BENCHMARK = "benchmarks.Work.track_work_per_step"


def _values(data: dict, name: str) -> tuple[list, list, dict]:
    """(parameter combinations, values) of one benchmark in one result file."""
    if name not in data.get("results", {}):
        return [], [], {}
    cols = _columns(data, data["results"][name])
    params = cols.get("params") or []
    combos = list(itertools.product(*params)) if params else []
    return combos, list(cols.get("result") or []), cols


def _parse(combo) -> tuple[str, int, float]:
    impl, m, alpha = (json.loads(p) if isinstance(p, str) and p[:1] in "0123456789-" else p.strip("'\"")
                      for p in combo)
    return str(impl), int(m), float(alpha)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def asv_runs(directory) -> dict[tuple[str, str], list[Path]]:
    """``(machine, commit) -> result files`` holding per-step timings under an asv
    ``results`` directory."""
    directory = Path(directory)
    runs: dict = {}
    for path in sorted(directory.rglob("*.json")):
        if path.name in ("machine.json", "benchmarks.json"):
            continue
        data = _load(path)
        if STEP_BENCHMARK not in data.get("results", {}):
            continue
        machine = (data.get("params") or {}).get("machine") or path.parent.name
        runs.setdefault((str(machine), str(data.get("commit_hash"))), []).append(path)
    return runs


def _pick(runs: dict, commit: str | None, machine: str | None, directory) -> tuple[str, str]:
    machines = sorted({mc for mc, _ in runs})
    if machine is not None:
        if machine not in machines:
            raise ConfigError(f"no asv results of machine {machine!r} under {directory}; it holds: {', '.join(machines)}.")
        machines = [machine]
    commits = sorted({c for mc, c in runs if mc in machines})
    if commit is not None:
        chosen = [c for c in commits if c.startswith(commit)]
        if not chosen:
            raise ConfigError(
                f"no asv results of commit {commit!r} under {directory}"
                f"{' for machine ' + repr(machines[0]) if len(machines) == 1 else ''}; it holds: "
                f"{', '.join(c[:10] for c in commits)}."
            )
        if len(chosen) > 1:
            raise ConfigError(f"commit prefix {commit!r} matches several: {', '.join(c[:10] for c in chosen)}; give more digits.")
        commits = chosen
    machines = sorted({mc for mc, c in runs if mc in machines and c in commits})
    if len(machines) > 1:
        raise ConfigError(
            f"asv results under {directory} come from several machines ({', '.join(machines)}); "
            "timings of different machines are never pooled: pick one with --asv-machine."
        )
    if len(commits) > 1:
        raise ConfigError(
            f"asv results under {directory} hold several commits ({', '.join(c[:10] for c in commits)}); "
            "timings of different commits are never pooled: pick one with --asv-commit (asv compare A B "
            "compares two)."
        )
    return machines[0], commits[0]


def load_asv_results(directory, *, commit: str | None = None, machine: str | None = None,
                     impls=None, alphas=None) -> tuple[list[dict], dict, dict]:
    """Records (one per parameter combination and sample) of one commit on one machine
    from an asv ``results`` directory (``results/<machine>/<commit>-<env>.json``).

    Uses the samples when asv recorded them (``--record-samples``), else the result value
    (asv's median). The counted work asv tracked (``Work.track_work_per_step``) is carried
    into the records. ``impls`` and ``alphas`` keep only those.

    Returns ``(records, config, machine)``: the machine is the one asv recorded
    (``machine.json``), not the one reading the results.

    Raises
    ------
    ConfigError
        When the directory holds several commits or machines and none was chosen (they are
        listed), or nothing matches.
    """
    directory = Path(directory)
    runs = asv_runs(directory)
    if not runs:
        raise ConfigError(
            f"no {STEP_BENCHMARK} results under {directory}; run the asv suite first (see README.md, "
            "'Benchmarks with asv')."
        )
    mc, cm = _pick(runs, commit, machine, directory)
    keep_impls = set(impls) if impls else None
    keep_alphas = {float(a) for a in alphas} if alphas else None
    records = []
    envs = []
    for path in runs[(mc, cm)]:
        data = _load(path)
        envs.append(str(data.get("env_name")))
        combos, values, step = _values(data, STEP_BENCHMARK)
        samples = step.get("samples") or [None] * len(values)
        bcombos, bvalues, _ = _values(data, BUILD_BENCHMARK)
        wcombos, wvalues, _ = _values(data, WORK_BENCHMARK)
        builds = dict(zip(map(_parse, bcombos), bvalues))
        works = dict(zip(map(_parse, wcombos), wvalues))
        for combo, value, smp in zip(combos, values, samples):
            impl, m, alpha = _parse(combo)
            if (keep_impls is not None and impl not in keep_impls) or (keep_alphas is not None and alpha not in keep_alphas):
                continue
            base = {
                "impl": impl, "m": m, "alpha": alpha, "repeat": 0, "n": ASV_N, "d": ASV_D, "steps": ASV_STEPS,
                "source": str(path.relative_to(directory)), "commit": cm,
            }
            if _missing(value):
                records.append(base | {"status": "skipped", "reason": "asv: not run, failed, or skipped (unavailable)"})
                continue
            bsec = builds.get((impl, m, alpha))
            work = works.get((impl, m, alpha))
            extra = {"build_seconds": None if _missing(bsec) else float(bsec)}
            if not _missing(work):
                extra["work"] = [float(work)]
            for rep, v in enumerate(smp if smp else [value]):
                records.append(base | extra | {"repeat": rep, "status": "ok", "per_iter_seconds": float(v)})
    if not any(r["status"] == "ok" for r in records):
        raise ConfigError(
            f"no measured {STEP_BENCHMARK} result of commit {cm[:10]} on {mc} under {directory}"
            + (" for the chosen --impl/--alpha" if keep_impls or keep_alphas else "") + "."
        )
    mfile = directory / mc / "machine.json"
    try:
        mach = json.loads(mfile.read_text()) if mfile.exists() else {"machine": mc}
    except (OSError, json.JSONDecodeError):
        mach = {"machine": mc}
    mach = {k: v for k, v in mach.items() if k != "version"}
    mach |= {"commit": cm, "asv environment": ", ".join(sorted(set(envs))), "source": f"asv results in {directory}"}
    config = {"impls": sorted({r["impl"] for r in records}, key=lambda s: (s != "dense", s)),
              "n": ASV_N, "d": ASV_D, "steps": ASV_STEPS, "repeats": "asv samples"}
    return records, config, mach


def default_out(machine: dict) -> str:
    """``reports/asv/<machine>-<commit>``: the default output folder of ``--from-asv``."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(machine.get("machine", "asv")))
    return f"reports/asv/{safe}-{str(machine.get('commit', 'unknown'))[:8]}"
