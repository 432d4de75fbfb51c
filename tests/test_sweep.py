"""Sweeps: resume after an interruption, the report, the CLI; and the asv suite."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from sublin_bench import sweep as sweep_mod
from sublin_bench.cli import cli
from sublin_bench.report import analyse, write_report
from sublin_bench.sweep import SweepConfig, load_results, planned_points, point_key, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def tiny(**kw):
    base = dict(impls=["dense", "tree"], alphas=[0.3, 0.5], m_min=2**8, m_max=2**11, n=6, d=4, steps=2, repeats=2)
    return SweepConfig(**(base | kw))


def test_resume_after_interruption_loses_and_repeats_nothing(tmp_path, monkeypatch):
    cfg = tiny()
    real = sweep_mod.measure_point
    calls = []

    def flaky(*args, **kw):
        if len(calls) == 7:
            raise KeyboardInterrupt
        calls.append(args[1:5])
        return real(*args, **kw)

    monkeypatch.setattr(sweep_mod, "measure_point", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, tmp_path, progress=False)
    first = load_results(tmp_path)
    assert len(first) == 7
    # a torn last line, as a kill in the middle of a write leaves it
    with (tmp_path / "results.jsonl").open("a") as fh:
        fh.write('{"impl": "dense", "alph')
    monkeypatch.setattr(sweep_mod, "measure_point", real)
    measured = []
    monkeypatch.setattr(sweep_mod, "measure_point", lambda *a, **k: measured.append(a[1:5]) or real(*a, **k))
    records = run_sweep(cfg, tmp_path, progress=False)
    planned = planned_points(cfg)
    assert len(records) == len(planned)
    assert len({point_key(r) for r in records}) == len(planned)  # nothing twice
    assert len(measured) == len(planned) - 7  # nothing measured again
    assert set(measured).isdisjoint(set(calls))
    # finished points kept exactly as they were
    again = {point_key(r): r for r in load_results(tmp_path)}
    for r in first:
        assert again[point_key(r)] == r


def test_oversized_points_are_skipped_with_a_note(tmp_path, monkeypatch):
    from sublin_bench import memory

    real = memory.available_bytes
    monkeypatch.setattr(memory, "available_bytes", lambda: 3 << 20)  # only tiny m fit
    cfg = tiny(impls=["dense"], alphas=[0.5], m_min=2**6, m_max=2**15, repeats=1)
    records = run_sweep(cfg, tmp_path, progress=False)
    monkeypatch.setattr(memory, "available_bytes", real)
    skipped = [r for r in records if r["status"] == "skipped"]
    assert skipped and all("needs about" in r["reason"] for r in skipped)
    assert any(r["status"] == "ok" for r in records)
    an = analyse(records, cfg.as_dict(), {})
    text = write_report(an, tmp_path).read_text()
    assert "## Skipped points" in text and "needs about" in text


def test_report_renders_with_one_panel_per_alpha(tmp_path):
    from PIL import Image

    cfg = tiny()
    records = run_sweep(cfg, tmp_path, progress=False)
    an = analyse(records, cfg.as_dict(), sweep_mod.machine_info())
    path = write_report(an, tmp_path)
    text = path.read_text()
    for needle in ("Cost exponents", "fired-count slope", "alpha = 0.3", "alpha = 0.5", "speedup tree", "## Provenance and machine", "first-step slope"):
        assert needle in text
    img = Image.open(tmp_path / "scaling.png")
    assert img.format == "PNG" and img.size[0] > 2 * img.size[1]  # two panels side by side
    img.load()
    assert "panels: alpha=0.3, alpha=0.5" in img.info.get("Description", "")


def test_scale_cli_small(tmp_path):
    out = tmp_path / "rep"
    args = ["scale", "--impl", "dense", "--impl", "band", "--alpha", "0.5", "--m-min", "2^8", "--m-max", "2^10",
            "--n", "5", "--d", "3", "--repeats", "2", "--steps", "1", "--out", str(out), "--no-progress"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert (out / "report.md").exists() and (out / "scaling.png").exists()
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2 * 5 * 2  # 2 impls x 5 widths (default: two per doubling) x 2 repeats
    assert all(json.loads(x)["status"] == "ok" for x in lines)
    # a second run measures nothing new
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0 and len((out / "results.jsonl").read_text().splitlines()) == 20


def test_scale_rejects_bad_grid(tmp_path):
    res = CliRunner().invoke(cli, ["scale", "--m-min", "2^10", "--m-max", "2^8", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "m_min <= m_max" in res.output
    res = CliRunner().invoke(cli, ["scale", "--alpha", "1.2", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "alpha must lie in [0, 1)" in res.output


# -- asv ---------------------------------------------------------------------------------

needs_asv = pytest.mark.skipif(shutil.which("asv") is None, reason="asv is not installed")


def _asv(args, tmp_path, **env):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    environ = os.environ | {"HOME": str(home), "SUBLIN_BENCH_ASV_PROFILE": "fast"} | env
    subprocess.run(["asv", "machine", "--yes"], cwd=ROOT, env=environ, check=True, capture_output=True)
    return subprocess.run(["asv", *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600)


def _config(tmp_path, name="asv.existing.json", root=ROOT) -> Path:
    """One of the project's asv configurations with results and html redirected to tmp_path."""
    import json5

    conf = json5.loads((root / name).read_text())
    conf |= {
        "repo": str(root), "benchmark_dir": str(root / "benchmarks"),
        "results_dir": str(tmp_path / "results"), "html_dir": str(tmp_path / "html"),
        "env_dir": str(tmp_path / "env"),
    }
    path = tmp_path / "asv.conf.json"
    path.write_text(json.dumps(conf))
    return path


@needs_asv
@pytest.mark.parametrize("name", ["asv.conf.json", "asv.existing.json"])
def test_asv_check_passes_for_every_configuration(tmp_path, name):
    res = _asv(["check", "--python=same", "--config", str(_config(tmp_path, name))], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "No problems found" in res.stdout


def test_every_asv_configuration_is_checked():
    assert sorted(p.name for p in ROOT.glob("asv*.json")) == ["asv.conf.json", "asv.existing.json"]


def test_the_suite_lists_every_registered_implementation(monkeypatch):
    import importlib
    import sys

    from sublin_bench import registry

    sys.path.insert(0, str(ROOT))
    try:
        from sublin_bench.impls.dense import DenseTrainer

        class Plugin(DenseTrainer):
            name = "plugin-x"

        registry.register("plugin-x", Plugin)
        import benchmarks.benchmarks as suite

        suite = importlib.reload(suite)
        assert suite.Step.params[0] == registry.names() and "plugin-x" in suite.Step.params[0]
        monkeypatch.setenv("SUBLIN_BENCH_ASV_IMPLS", "dense,band")
        suite = importlib.reload(suite)
        assert suite.Step.params[0] == ["dense", "band"]
    finally:
        sys.path.remove(str(ROOT))


@needs_asv
@pytest.mark.slow
def test_asv_continuous_flags_a_deliberately_slowed_commit(tmp_path):
    """On a fresh clone, a scratch commit that sleeps in band's step: asv continuous, which
    builds both commits into a virtualenv (asv.conf.json), reports the regression and exits
    non-zero."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    band = clone / "impls" / "band.py"
    text = band.read_text()
    band.write_text(text.replace("    def _refresh(self, g, coef):\n", "    def _refresh(self, g, coef):\n"
                                 "        import time\n\n        time.sleep(0.02)\n", 1))
    assert "time.sleep(0.02)" in band.read_text()
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "commit", "-qam", "slow band (scratch)"], check=True)
    conf = _config(tmp_path, "asv.conf.json", root=clone)
    cache = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
    res = _asv(["continuous", "--config", str(conf), "--factor", "1.2", "--bench", "Step.time_step", "HEAD~1", "HEAD"],
               tmp_path, SUBLIN_BENCH_ASV_IMPLS="band", PIP_CACHE_DIR=cache)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "PERFORMANCE DECREASED" in out or "Performance degradation" in out, out


@needs_asv
def test_asv_quick_run_and_report_from_asv(tmp_path):
    conf = _config(tmp_path)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout with a commit")
    res = _asv(
        ["run", "--python=same", "--quick", "--record-samples", "--config", str(conf),
         "--set-commit-hash", head.stdout.strip(), "--bench", "Step.time_step"],
        tmp_path,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    out = tmp_path / "report"
    r = CliRunner().invoke(cli, ["scale", "--from-asv", str(tmp_path / "results"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = (out / "report.md").read_text()
    assert "| 0.5 | tree |" in text and (out / "scaling.png").exists()


def test_order_is_interleaved_and_rotated():
    cfg = tiny(impls=["dense", "tree", "band"], alphas=[0.5], m_min=2**8, m_max=2**8, repeats=3)
    order = [p[0] for p in planned_points(cfg)]
    assert order == ["dense", "tree", "band", "tree", "band", "dense", "band", "dense", "tree"]
    firsts = {order[3 * r] for r in range(3)}
    assert firsts == {"dense", "tree", "band"}


def test_repeats_sweep_the_whole_grid_in_turn():
    cfg = tiny(impls=["dense", "band"], alphas=[0.24, 0.5], m_min=2**8, m_max=2**10, repeats=3)
    plan = planned_points(cfg)
    per_repeat = len(cfg.impls) * len(cfg.alphas) * len(cfg.ms)
    assert len(plan) == per_repeat * cfg.repeats
    for r in range(cfg.repeats):
        block = plan[r * per_repeat : (r + 1) * per_repeat]
        assert {p[3] for p in block} == {r}  # repeat r only
        assert {(p[0], p[1], p[2]) for p in block} == {(i, a, m) for i in cfg.impls for a in cfg.alphas for m in cfg.ms}


def test_cells_come_in_a_seeded_random_order_within_each_repeat():
    cfg = tiny(impls=["dense", "band"], alphas=[0.24, 0.5], m_min=2**8, m_max=2**13, repeats=4)
    plan = planned_points(cfg)
    assert plan == planned_points(cfg)  # the same plan every time: resume depends on it
    per = len(cfg.impls) * len(cfg.alphas) * len(cfg.ms)
    cells = [[(p[1], p[2]) for p in plan[r * per : (r + 1) * per : len(cfg.impls)]] for r in range(cfg.repeats)]
    ascending = [(a, m) for a in cfg.alphas for m in cfg.ms]
    for r, order in enumerate(cells):
        assert sorted(order) == ascending  # every cell once per repeat
        # implementations side by side at every cell
        k = len(cfg.impls)
        for j in range(len(order)):
            side_by_side = plan[r * per + k * j : r * per + k * (j + 1)]
            assert {p[0] for p in side_by_side} == set(cfg.impls)
            assert len({(p[1], p[2]) for p in side_by_side}) == 1
    assert len({tuple(o) for o in cells}) == cfg.repeats  # a fresh order for every repeat
    assert all(o != ascending for o in cells)
    assert planned_points(tiny(impls=["dense", "band"], alphas=[0.24, 0.5], m_min=2**8, m_max=2**13,
                               repeats=4, seed=1)) != plan


def test_fractional_grid_factor():
    cfg = tiny(m_min=2**10, m_max=2**12, m_factor=2**0.5)
    assert cfg.ms == [1024, 1448, 2048, 2896, 4096]
    with pytest.raises(Exception, match="grid factor"):
        tiny(m_factor=1.0)


def test_default_grid_has_two_widths_per_doubling_and_ends_on_2_20():
    from sublin_bench.scaling import fit_range

    ms = SweepConfig().ms
    assert ms[0] == 2**12 and ms[-1] == 2**20 and len(ms) == 17
    assert fit_range(ms) == ms[8:] and ms[8] == 2**16  # nine fitted widths


@pytest.mark.parametrize("text, expect", [("2", 2.0), ("2**0.5", 2**0.5), ("2^0.5", 2**0.5), ("1.5", 1.5)])
def test_cli_grid_factor_accepts_powers(text, expect):
    from sublin_bench.cli import FACTOR

    assert FACTOR.convert(text, None, None) == expect


@pytest.mark.parametrize("bad", ["1.05", "abc", "2**", "0"])
def test_cli_grid_factor_rejects_bad_values(bad, tmp_path):
    res = CliRunner().invoke(cli, ["scale", "--factor", bad, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--factor" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_cli_defaults_are_the_sweep_defaults():
    from sublin_bench.cli import scale

    opts = {p.name: p.default for p in scale.params}
    cfg = SweepConfig()
    assert (opts["repeats"], opts["steps"]) == (cfg.repeats, cfg.steps)
    assert f"{cfg.repeats} repeats of T = {cfg.steps} steps" in scale.help


# -- the cost in n and d, and the solvers -------------------------------------------------


def test_scale_over_n_with_solvers(tmp_path):
    """--vary n at a fixed width, every implementation with every solver: one record per
    (impl, solver, n, repeat) with the right sizes, slopes over n, the solvers against the
    exact solve, the regime named; a second run measures nothing new."""
    out = tmp_path / "n"
    args = ["scale", "--vary", "n", "--m", "2^11", "--n-min", "4", "--n-max", "16", "--factor", "2", "--d", "16",
            "--impl", "band", "--solver", "exact", "--solver", "cg", "--alpha", "0.5", "--repeats", "2",
            "--steps", "2", "--out", str(out), "--no-progress"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    recs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(recs) == 2 * 3 * 2
    assert {(r["solver"], r["n"]) for r in recs} == {(s, n) for s in ("exact", "cg") for n in (4, 8, 16)}
    assert all(r["m"] == 2048 and r["d"] == 16 and r["vary"] == "n" and r["status"] == "ok" for r in recs)
    cg = [r for r in recs if r["solver"] == "cg"]
    assert all(min(r["solver_iterations"]) >= 1 and max(r["solver_residual"]) <= 1e-9 for r in cg)
    assert all(r["solver_iterations"] == [0, 0] for r in recs if r["solver"] == "exact")
    # n Q(b): the expected inputs per neuron, proportional to n at a fixed width
    nq = {r["n"]: r["n_q"] for r in recs}
    assert nq[16] == pytest.approx(4 * nq[4])
    text = (out / "report.md").read_text()
    for needle in ("log(n) at fixed m = 2048", "band+cg", "band+cg vs band exact", "## Regime", "| n |", "fitted n"):
        assert needle in text, needle
    assert "cheaper than the exact solve" in res.output
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0 and len((out / "results.jsonl").read_text().splitlines()) == 12


def test_a_directory_of_one_axis_refuses_another(tmp_path):
    """Points varied over n at one width and points varied over m are never pooled, nor
    points of another fixed width."""
    cfg = SweepConfig(impls=["band"], alphas=[0.5], vary="n", m=2**9, n_min=4, n_max=8, m_factor=2, d=3,
                      steps=1, repeats=1)
    run_sweep(cfg, tmp_path, progress=False)
    from sublin_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="vary: n -> m"):
        run_sweep(tiny(impls=["band"], alphas=[0.5], n=4, d=3, steps=1, repeats=1), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="m: 512 -> 1024"):
        run_sweep(SweepConfig(**(cfg.as_dict() | {"m": 2**10})), tmp_path, progress=False)
    # the grid may grow in place: another solver, a larger n
    more = SweepConfig(**(cfg.as_dict() | {"n_max": 16, "solvers": ["exact", "sketch"]}))
    recs = run_sweep(more, tmp_path, progress=False)
    assert len(recs) == 3 * 2


@pytest.mark.parametrize("kw, msg", [
    (dict(vary="n"), "--vary n needs the grid's ends"),
    (dict(vary="n", n_min=8, n_max=4), "need 1 <= n_min <= n_max"),
    (dict(vary="q"), "--vary must be one of m, n, d"),
    (dict(n_min=4, n_max=8), "--n-min/--n-max go with --vary n"),
    (dict(solvers=["lu"]), "unknown solver 'lu'"),
    (dict(solvers=[]), "choose at least one solver"),
])
def test_bad_axis_or_solver_is_refused(kw, msg):
    from sublin_bench.errors import ConfigError

    with pytest.raises(ConfigError, match=msg):
        tiny(**kw)


def test_cli_vary_n_refuses_m_grid_options(tmp_path):
    res = CliRunner().invoke(cli, ["scale", "--vary", "n", "--n-min", "4", "--n-max", "8", "--m-max", "2^12",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--m-max goes with --vary m" in res.output and "Traceback" not in res.output


def test_records_without_a_solver_are_exact_solves(tmp_path):
    """Records written before solvers existed carry no "solver" or "vary": they are exact
    solves over m, and a resumed sweep counts them as done."""
    cfg = tiny(impls=["dense"], alphas=[0.5], m_min=2**8, m_max=2**8, repeats=1)
    recs = run_sweep(cfg, tmp_path, progress=False)
    path = tmp_path / "results.jsonl"
    old = [{k: v for k, v in json.loads(x).items() if k not in ("solver", "vary")} for x in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in old))
    again = run_sweep(cfg, tmp_path, progress=False)
    assert len(again) == len(recs) == 1 and len(path.read_text().splitlines()) == 1
    an = analyse(again, cfg.as_dict(), {})
    assert an.impls == ["dense"] and an.axis == "m"
