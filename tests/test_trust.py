"""Results a user can trust: provenance, no silent mixing, a reference that cannot be
hijacked, bad input refused before measuring, timings that say what they mean, readable
figures, and a package that installs under its own name."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sublin_bench import ConfigError, Problem, ProblemSpec, make_problem, registry
from sublin_bench import sweep as sweep_mod
from sublin_bench.cli import cli
from sublin_bench.errors import DivergenceError
from sublin_bench.impls.dense import DenseTrainer
from sublin_bench.report import analyse, impl_color, scaling_figure
from sublin_bench.sweep import LOCK, RESULTS, SweepConfig, read_results, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def tiny(**kw):
    base = dict(impls=["dense", "band"], alphas=[0.5], m_min=2**8, m_max=2**9, m_factor=2, n=5, d=3, steps=3,
                repeats=1)
    return SweepConfig(**(base | kw))


def one_line_error(res, fragment):
    assert res.exit_code != 0, res.output
    assert fragment in res.output, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception


# -- 1. provenance ---------------------------------------------------------------------


def test_every_record_carries_its_provenance(tmp_path):
    records = run_sweep(tiny(), tmp_path, progress=False)
    assert records and all(r["status"] == "ok" for r in records)
    for r in records:
        prov = r["provenance"]
        for key in ("commit", "dirty", "sublin_bench", "generator", "numpy", "numba", "blas", "blas_threads",
                    "numba_threads", "blas_thread_timeout", "host"):
            assert key in prov, key
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["machine"]["commit"] == records[0]["provenance"]["commit"]


def test_resume_refuses_other_provenance_and_says_why(tmp_path, monkeypatch):
    run_sweep(tiny(), tmp_path, progress=False)
    real = sweep_mod.provenance()
    monkeypatch.setattr(sweep_mod, "provenance", lambda: real | {"commit": "0" * 40, "numba_threads": 99})
    with pytest.raises(ConfigError) as exc:
        run_sweep(tiny(m_max=2**10), tmp_path, progress=False)
    msg = str(exc.value)
    assert "another provenance" in msg and "commit" in msg and "numba_threads: " in msg and "-> 99" in msg


def test_records_without_provenance_are_not_resumed(tmp_path):
    run_sweep(tiny(), tmp_path, progress=False)
    path = tmp_path / RESULTS
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "provenance"}) + "\n" for r in recs))
    with pytest.raises(ConfigError, match="no provenance recorded"):
        run_sweep(tiny(), tmp_path, progress=False)


def test_resume_refuses_another_configuration(tmp_path):
    run_sweep(tiny(), tmp_path, progress=False)
    with pytest.raises(ConfigError, match=r"another configuration \(n: 5 -> 6\)"):
        run_sweep(tiny(n=6), tmp_path, progress=False)


def test_a_resumed_run_says_how_many_points_were_done(tmp_path):
    run_sweep(tiny(), tmp_path, progress=False)
    heard = []
    run_sweep(tiny(m_max=2**10), tmp_path, progress=False, say=heard.append)
    assert any("resuming: 4 of 6 points already measured" in line for line in heard), heard


# -- 2. no silent mixing -----------------------------------------------------------------


def test_a_second_run_on_the_same_directory_is_refused(tmp_path):
    from filelock import FileLock

    held = FileLock(str(tmp_path / LOCK))
    held.acquire()
    try:
        with pytest.raises(ConfigError, match="another sublin-bench run is writing"):
            run_sweep(tiny(), tmp_path, progress=False)
    finally:
        held.release()
    assert not (tmp_path / RESULTS).exists()
    run_sweep(tiny(), tmp_path, progress=False)  # released: runs


def test_a_second_process_on_the_same_out_is_refused(tmp_path):
    code = (
        "import sys, time; from filelock import FileLock; "
        f"l = FileLock({str(tmp_path / LOCK)!r}); l.acquire(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = CliRunner().invoke(cli, ["scale", "--impl", "dense", "--alpha", "0.5", "--m-min", "2^8", "--m-max",
                                       "2^8", "--n", "3", "--d", "2", "--repeats", "1", "--out", str(tmp_path),
                                       "--no-progress"])
        one_line_error(res, "another sublin-bench run is writing")
    finally:
        holder.kill()
        holder.wait()


def test_duplicate_implementations_and_alphas_are_merged():
    cfg = SweepConfig(impls=["dense", "band", "dense"], alphas=[0.5, 0.24, 0.5, 0.50])
    assert cfg.impls == ["dense", "band"] and cfg.alphas == [0.5, 0.24]


def test_duplicates_on_the_command_line_measure_each_point_once(tmp_path):
    args = ["scale", "--impl", "dense", "--impl", "dense", "--alpha", "0.5", "--alpha", "0.5", "--m-min", "2^8",
            "--m-max", "2^9", "--factor", "2", "--n", "3", "--d", "2", "--repeats", "1", "--out", str(tmp_path),
            "--no-progress"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert len((tmp_path / RESULTS).read_text().splitlines()) == 2


def test_skipped_points_are_retried_on_the_next_run(tmp_path, monkeypatch):
    from sublin_bench import memory

    real = memory.available_bytes
    monkeypatch.setattr(memory, "available_bytes", lambda: 1)  # nothing fits right now
    cfg = tiny()
    with pytest.raises(ConfigError, match="no point of the sweep could be measured"):
        run_sweep(cfg, tmp_path, progress=False)
    assert all(json.loads(x)["status"] == "skipped" for x in (tmp_path / RESULTS).read_text().splitlines())
    monkeypatch.setattr(memory, "available_bytes", real)
    heard = []
    records = run_sweep(cfg, tmp_path, progress=False, say=heard.append)
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    assert not any("resuming" in h for h in heard)  # nothing measured before


@pytest.mark.parametrize("bad", ["{}", "null", "[1, 2]", '"text"', "3",
                                 '{"impl": 3, "alpha": 0.5, "m": 256, "n": 5, "d": 3, "dtype": "float64", '
                                 '"steps": 3, "seed": 0, "repeat": 0, "status": "ok"}',
                                 '{"impl": "dense", "alpha": "x", "m": 256, "n": 5, "d": 3, "dtype": "float64", '
                                 '"steps": 3, "seed": 0, "repeat": 0, "status": "skipped"}'])
def test_malformed_result_lines_are_reported_with_their_line_number(tmp_path, bad):
    run_sweep(tiny(), tmp_path, progress=False)
    path = tmp_path / RESULTS
    lines = path.read_text().splitlines()
    lines.insert(2, bad)
    path.write_text("\n".join(lines) + "\n")
    records, warnings = read_results(tmp_path)
    assert len(records) == 4
    assert len(warnings) == 1 and f"{RESULTS}:3:" in warnings[0] and "ignored" in warnings[0]
    res = CliRunner().invoke(cli, ["scale", "--impl", "dense", "--impl", "band", "--alpha", "0.5", "--m-min",
                                   "2^8", "--m-max", "2^9", "--factor", "2", "--n", "5", "--d", "3", "--repeats",
                                   "1", "--out", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert f"{RESULTS}:3:" in res.output.replace("\n", "") and "Traceback" not in res.output


# -- 3. --from-asv -----------------------------------------------------------------------


def _asv_file(path: Path, commit: str, machine: str, scale: float, impls=("dense", "band")):
    params = [[repr(i) for i in impls], ["1024", "4096"], ["0.24", "0.5"]]
    combos = [(i, m, a) for i in impls for m in (1024, 4096) for a in (0.24, 0.5)]
    step = [scale * m * (1e-7 if i == "dense" else 1e-9 * m**-0.4) for i, m, a in combos]
    work = [float(2 * m * 32 if i == "dense" else m**0.6) for i, m, a in combos]
    cols = ["result", "params", "version", "samples"]
    data = {
        "commit_hash": commit, "env_name": "existing-py", "params": {"machine": machine, "python": "3.11"},
        "result_columns": cols, "version": 2,
        "results": {
            "benchmarks.Step.time_step": [step, params, "v", [[v, v * 1.01, v * 0.99] for v in step]],
            "benchmarks.Build.time_build": [[v * 3 for v in step], params, "v", None],
            "benchmarks.Work.track_work_per_step": [work, params, "v", None],
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    (path.parent / "machine.json").write_text(json.dumps({"machine": machine, "cpu": f"cpu of {machine}",
                                                          "num_cpu": "64", "version": 1}))


@pytest.fixture
def asv_results(tmp_path):
    res = tmp_path / "results"
    _asv_file(res / "boxA" / "aaaa1111-existing-py.json", "aaaa1111" + "0" * 32, "boxA", 1.0)
    _asv_file(res / "boxA" / "bbbb2222-existing-py.json", "bbbb2222" + "0" * 32, "boxA", 2.0)
    _asv_file(res / "boxB" / "aaaa1111-existing-py.json", "aaaa1111" + "0" * 32, "boxB", 5.0)
    return res


def test_from_asv_refuses_to_pool_commits_or_machines(asv_results, tmp_path):
    res = CliRunner().invoke(cli, ["scale", "--from-asv", str(asv_results), "--out", str(tmp_path / "o")])
    one_line_error(res, "several machines (boxA, boxB)")
    res = CliRunner().invoke(cli, ["scale", "--from-asv", str(asv_results), "--asv-machine", "boxA",
                                   "--out", str(tmp_path / "o")])
    one_line_error(res, "several commits (aaaa111100, bbbb222200)")
    res = CliRunner().invoke(cli, ["scale", "--from-asv", str(asv_results), "--asv-machine", "boxA",
                                   "--asv-commit", "cccc", "--out", str(tmp_path / "o")])
    one_line_error(res, "no asv results of commit 'cccc'")


def test_from_asv_reports_one_commit_on_one_machine(asv_results, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["scale", "--from-asv", str(asv_results), "--asv-machine", "boxA",
                                   "--asv-commit", "bbbb", "--impl", "band", "--alpha", "0.5"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "reports" / "asv" / "boxA-bbbb2222"  # its own folder by default
    text = (out / "report.md").read_text()
    assert "| 0.5 | band |" in text
    assert "| 0.24 |" not in text and "| 0.5 | dense |" not in text  # --impl / --alpha honoured
    assert "cpu: cpu of boxA" in text and "commit: bbbb2222" in text  # the asv machine, not this one
    assert "host:" not in text
    from sublin_bench.asv_import import load_asv_results

    records, cfg, mach = load_asv_results(asv_results, machine="boxA", commit="bbbb")
    band = [r for r in records if r["impl"] == "band" and r["status"] == "ok"]
    assert band and all(r["work"] and r["work"][0] > 0 for r in band)  # the counters asv tracked
    assert {r["commit"] for r in records} == {"bbbb2222" + "0" * 32}
    assert mach["machine"] == "boxA" and mach["num_cpu"] == "64"


# -- 4. the reference cannot be hijacked ------------------------------------------------


class _EP:
    """Stands in for an importlib.metadata entry point of another distribution."""

    def __init__(self, name, value, dist):
        self.name, self.value = name, value
        self.dist = type("D", (), {"metadata": {"Name": dist}})()


@pytest.fixture
def plugins(monkeypatch):
    def install(*eps):
        monkeypatch.setattr(registry, "entry_points", lambda group: list(eps))
        monkeypatch.setattr(registry, "_targets", None)
        monkeypatch.setattr(registry, "_loaded", {})
        monkeypatch.setattr(registry, "_load_errors", {})
        monkeypatch.setattr(registry, "_conflicts", {})

    yield install
    registry._targets = None


def test_a_plugin_cannot_take_the_name_dense(plugins):
    plugins(_EP("dense", "evil_pkg.fake:Fake", "evil-pkg"), _EP("dense", "sublin_bench.impls.dense:DenseTrainer",
                                                                 "sublin-bench"))
    assert registry.get("dense") is DenseTrainer
    why = registry.conflicts()["dense"]
    assert "evil_pkg.fake:Fake from evil-pkg" in why and "sublin_bench.impls.dense:DenseTrainer" in why
    res = CliRunner().invoke(cli, ["list"])
    assert "refused registration of 'dense'" in res.output.replace("\n", "")


def test_two_plugins_claiming_one_name_are_both_refused(plugins):
    plugins(_EP("fast", "a_pkg:Fast", "a-pkg"), _EP("fast", "b_pkg:Fast", "b-pkg"))
    ok, reason = registry.available("fast")
    assert not ok and "a_pkg:Fast from a-pkg" in reason and "b_pkg:Fast from b-pkg" in reason
    assert "fast" in registry.names()
    # the order in which metadata is found does not matter
    plugins(_EP("fast", "b_pkg:Fast", "b-pkg"), _EP("fast", "a_pkg:Fast", "a-pkg"))
    assert registry.available("fast") == (ok, reason)


def test_the_same_entry_point_seen_twice_counts_once(plugins):
    ep = _EP("mine", "sublin_bench.impls.dense:DenseTrainer", "my-pkg")
    plugins(ep, ep)
    assert registry.get("mine") is DenseTrainer and registry.conflicts() == {}


def test_registering_a_taken_name_in_process_is_refused():
    with pytest.raises(ConfigError, match="already taken by sublin_bench.impls.dense:DenseTrainer"):
        registry.register("dense", registry.get("band"))
    assert registry.get("dense") is DenseTrainer


def test_builtins_match_the_declared_entry_points():
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][registry.GROUP]
    assert declared == registry.BUILTINS


@pytest.mark.parametrize("cwd", [ROOT, None])
def test_a_name_means_the_same_class_however_python_starts(cwd, tmp_path):
    code = "from sublin_bench import registry; print(registry.get('dense').__module__, registry.conflicts())"
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd or tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "sublin_bench.impls.dense {}"


def test_verify_skips_a_broken_plugin_and_checks_the_rest(plugins):
    plugins(_EP("broken", "no_such_module_xyz:Trainer", "broken-pkg"))
    res = CliRunner().invoke(cli, ["verify", "--impl", "dense", "--impl", "band", "--steps", "1"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["verify", "--steps", "1"])
    assert res.exit_code == 0, res.output
    assert "skipped broken" in res.output and "ModuleNotFoundError" in res.output
    assert "band" in res.output


def test_verify_of_an_unavailable_implementation_exits_non_zero(plugins):
    plugins(_EP("broken", "no_such_module_xyz:Trainer", "broken-pkg"))
    res = CliRunner().invoke(cli, ["verify", "--impl", "broken", "--steps", "1"])
    assert res.exit_code != 0 and "not verified" in res.output


# -- 5. bad input, one line each, before measuring ----------------------------------------


def test_the_memory_estimate_counts_the_n_by_n_arrays():
    est = registry.memory_estimate("dense", ProblemSpec(m=2**10, n=20000, d=32, alpha=0.24))
    assert est > 20000**2 * 8 * 4


@pytest.mark.parametrize("n", ["20000", "2**20"])
def test_a_huge_n_is_refused_before_anything_is_allocated(n):
    t0 = time.perf_counter()
    res = CliRunner().invoke(cli, ["run", "--m", "2**10", "--n", n])
    one_line_error(res, "needs about")
    assert time.perf_counter() - t0 < 30


def test_an_out_that_cannot_be_written_is_refused_before_measuring(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = CliRunner().invoke(cli, ["scale", "--out", str(blocker / "sub")])
    one_line_error(res, "cannot write to the output directory")
    from sublin_bench import proofs_check

    monkeypatch.setattr(proofs_check, "run_all", lambda *a, **k: pytest.fail("measured before checking --out"))
    res = CliRunner().invoke(cli, ["proofs", "--quick", "--out", str(blocker / "sub")])
    one_line_error(res, "cannot write to the output directory")


@pytest.mark.parametrize("args, fragment", [
    (["scale", "--factor", "inf"], "not a finite number"),
    (["scale", "--factor", "nan"], "not a finite number"),
    (["run", "--m", "9**99999999"], "far too large"),
    (["scale", "--m-max", "2**1000"], "too large"),
])
def test_absurd_numbers_get_one_line_at_once(args, fragment, tmp_path):
    t0 = time.perf_counter()
    res = CliRunner().invoke(cli, [*args, "--out", str(tmp_path)] if args[0] == "scale" else args)
    one_line_error(res, fragment)
    assert time.perf_counter() - t0 < 5


def test_a_grid_wider_than_the_machine_is_refused_up_front(tmp_path):
    res = CliRunner().invoke(cli, ["scale", "--impl", "dense", "--m-max", "2**40", "--out", str(tmp_path)])
    one_line_error(res, "the widest grid width that fits is")
    assert not (tmp_path / RESULTS).exists()


def test_a_sweep_where_every_point_is_skipped_fails(tmp_path, monkeypatch):
    from sublin_bench import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1)
    res = CliRunner().invoke(cli, ["scale", "--impl", "dense", "--alpha", "0.5", "--m-min", "2^8", "--m-max", "2^9",
                                   "--n", "3", "--d", "2", "--repeats", "1", "--out", str(tmp_path), "--no-progress"])
    one_line_error(res, "no point of the sweep could be measured")
    assert "slope" not in res.output


def test_divergence_is_detected_and_said(tmp_path):
    for name in ("band", "band-implicit"):  # band-implicit: neurons whose z became NaN must not just retire
        t = registry.create(name, make_problem(ProblemSpec(m=1024, n=8, d=4, alpha=0.2)), step_size=1e300)
        with pytest.raises(DivergenceError, match="step size 1e\\+300"):
            t.run(5)
    res = CliRunner().invoke(cli, ["run", "--impl", "dense", "--m", "2**10", "--n", "8", "--d", "4",
                                   "--step-size", "1e300"])
    one_line_error(res, "training diverged")


def test_from_arrays_normalises_rows_that_would_overflow():
    p = Problem.from_arrays([[1e308, 1e308], [1e-310, 0.0]], [1.0, 2.0], m=8, alpha=0.1)
    assert np.allclose(np.linalg.norm(p.X, axis=1), 1.0)
    assert np.allclose(p.X[0], [2**-0.5, 2**-0.5]) and np.allclose(p.X[1], [1.0, 0.0])


@pytest.mark.parametrize("field, value", [("m", "1024"), ("n", "4"), ("d", "3"), ("alpha", "0.24"),
                                          ("seed", "1"), ("b", "1.5")])
def test_problem_spec_refuses_numeric_strings_in_every_field(field, value):
    kw = dict(m=1024, n=4, d=3, alpha=0.24) | {field: value}
    with pytest.raises(ConfigError, match=f"{field} must be a number, got the string"):
        ProblemSpec(**kw)


def test_an_unknown_option_to_create_is_named():
    with pytest.raises(ConfigError, match="unknown option\\(s\\) 'margn' for implementation 'band'; it takes "
                                          "step_size and margin, neuron_order"):
        registry.create("band", make_problem(ProblemSpec(m=64, n=3, d=2, alpha=0.2)), margn=0.3)


# -- 6. timing that means what it says -----------------------------------------------------


def test_every_step_is_timed_and_first_and_steady_state_are_fitted(tmp_path):
    cfg = tiny(m_max=2**10, repeats=2)
    records = run_sweep(cfg, tmp_path, progress=False)
    assert all(len(r["step_seconds"]) == cfg.steps for r in records)
    fake = [dict(r) for r in records]
    for r in fake:  # first step 10x a later one, later ones linear in m
        r["step_seconds"] = [1e-5 * r["m"], 1e-6 * r["m"], 1e-6 * r["m"]]
    an = analyse(fake, cfg.as_dict(), {}, warmup_steps=1)
    key = (0.5, "band")
    m = max(an.stats[key])
    assert an.stats[key][m][0] == pytest.approx(1e-6 * m)
    assert an.first_stats[key][m] == pytest.approx(1e-5 * m)
    assert an.first[key].slope == pytest.approx(1.0) and an.fits[key].slope == pytest.approx(1.0)
    an0 = analyse(fake, cfg.as_dict(), {}, warmup_steps=0)
    assert an0.stats[key][m][0] == pytest.approx(1e-6 * m)  # median of all three


def test_warmup_steps_must_leave_a_step(tmp_path):
    res = CliRunner().invoke(cli, ["scale", "--steps", "2", "--warmup-steps", "2", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "leaves no step" in res.output


def test_threads_are_set_explicitly_and_recorded(tmp_path):
    code = (
        "from click.testing import CliRunner; from sublin_bench.cli import cli; import json, sys; "
        f"r = CliRunner().invoke(cli, ['scale', '--impl', 'dense', '--alpha', '0.5', '--m-min', '2^8', "
        f"'--m-max', '2^8', '--n', '3', '--d', '2', '--repeats', '1', '--threads', '1', '--out', {str(tmp_path)!r}, "
        "'--no-progress']); sys.exit(r.exit_code)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    rec = json.loads((tmp_path / RESULTS).read_text().splitlines()[0])
    assert rec["provenance"]["blas_threads"] == 1 and rec["provenance"]["numba_threads"] == 1


# -- 7. figures a reader can read -------------------------------------------------------


def test_an_implementation_has_one_colour_everywhere():
    assert impl_color("dense") != impl_color("band") != impl_color("tree")
    assert impl_color("my-plugin") == impl_color("my-plugin")


def test_scaling_figure_colours_and_labelled_references(tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    records = run_sweep(tiny(impls=["band", "dense"], m_max=2**11, alphas=[0.24, 0.5]), tmp_path, progress=False)
    an = analyse(records, tiny(impls=["band", "dense"]).as_dict(), {})
    fig = scaling_figure(an)
    try:
        for ax in fig.axes:
            labels = [t.get_text() for t in ax.get_legend().get_texts()]
            assert any(lbl.startswith("fired count") and "through band's fit at m=" in lbl for lbl in labels)
            assert any(lbl.startswith("slope 1 (linear), through band's fit") for lbl in labels)
            for line in ax.get_lines():
                if line.get_label().startswith(("band", "dense")):
                    assert to_hex(line.get_color()) == impl_color(line.get_label().split()[0])
        title = fig._suptitle.get_text()
        assert "band, dense" in title and "n=5" in title and "d=3" in title and "steady state" in title
    finally:
        plt.close(fig)


def test_proofs_figure_labels_and_title():
    import matplotlib.pyplot as plt

    from sublin_bench.proofs_check import movement, ntk_eigen
    from sublin_bench.proofs_check.common import Sizes
    from sublin_bench.proofs_check.plots import alpha_figure

    sizes = Sizes(ms=(2**8, 2**9, 2**10), n=6, d=4, steps=3)
    results = [mod.check(impl="band", alpha=0.5, sizes=sizes) for mod in (movement, ntk_eigen)]
    fig = alpha_figure(results, 0.5, title="proofs (quick), implementation band, n=6, d=4")
    try:
        mov = next(ax for ax in fig.axes if ax.get_title() == "weight movement")
        assert "w_r" in mov.get_ylabel()
        fig.canvas.draw()
        ticks = [t.get_text() for t in mov.get_yticklabels() if t.get_text()]
        assert ticks and all("$" not in t for t in ticks)  # plain numbers, at least one
        assert "implementation band" in fig._suptitle.get_text() and "n=6" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_cost_scaling_at_alpha_zero_is_not_applicable():
    from sublin_bench.proofs_check import cost_scaling
    from sublin_bench.proofs_check.common import NA

    v, margin, detail = cost_scaling.verdict(0.997, 0.99, 1.003, 0.0, 1.0)
    assert v == NA and "not applicable" in detail


# -- 8. packaging ------------------------------------------------------------------------


def test_no_generic_top_level_packages_are_installed(tmp_path):
    code = ("import importlib.util as u; print(u.find_spec('impls'), u.find_spec('proofs_check'), "
            "u.find_spec('sublin_bench.impls') is not None, u.find_spec('sublin_bench.proofs_check') is not None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env=os.environ | {"PYTHONPATH": ""})
    assert out.stdout.split() == ["None", "None", "True", "True"], out.stdout + out.stderr


def test_no_docstring_cites_a_document_the_repository_does_not_ship():
    for folder in ("sublin_bench", "impls", "proofs_check", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            assert "DESIGN.md" not in path.read_text(), path


def test_the_blas_spin_is_set_before_numpy_loads_and_recorded():
    """A fresh interpreter that imports sublin_bench first gets OPENBLAS_THREAD_TIMEOUT = 4
    (unless its environment sets one) and records it; one that loaded numpy first records
    what OpenBLAS actually read."""
    import os
    import subprocess
    import sys

    code = "import {first}; from sublin_bench.provenance import provenance; print(provenance()['blas_thread_timeout'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}

    def run(first, **extra):
        out = subprocess.run([sys.executable, "-c", code.format(first=first)], env={**env, **extra},
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    assert run("sublin_bench") == "4"
    assert run("sublin_bench", OPENBLAS_THREAD_TIMEOUT="20") == "20"
    assert run("numpy, sublin_bench") == "28"
    # a process started from one that loaded numpy first inherits what that one runs with
    child = ("import numpy, sublin_bench, subprocess, sys; print(subprocess.run([sys.executable, '-c', "
             "\"import sublin_bench.provenance as p; print(p.provenance()['blas_thread_timeout'])\"], "
             "capture_output=True, text=True).stdout.strip())")
    out = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "28"
