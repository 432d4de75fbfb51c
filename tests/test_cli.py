import json

import pytest
from click.testing import CliRunner

from sublin_bench import memory as memory_mod
from sublin_bench.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


def test_help_lists_commands(runner):
    res = runner.invoke(cli, ["--help"])
    assert res.exit_code == 0
    for cmd in ("list", "run", "verify"):
        assert cmd in res.output


def test_list_shows_availability(runner):
    res = runner.invoke(cli, ["list"])
    assert res.exit_code == 0
    for name in ("dense", "tree", "band"):
        assert name in res.output
    assert "yes" in res.output


def test_run_json(runner):
    res = runner.invoke(cli, ["run", "--impl", "tree", "--m", "2^12", "--n", "8", "--d", "4", "--steps", "3", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["spec"]["m"] == 4096 and len(out["steps"]) == 3
    assert out["steps"][0]["residual_norm"] > out["final_residual_norm"]
    assert {"flips", "moved", "fired_mean", "fired_max", "seconds"} <= set(out["steps"][0])


def test_run_table(runner):
    res = runner.invoke(cli, ["run", "--impl", "band", "--m", "2**10", "--n", "4", "--d", "3", "--steps", "2"])
    assert res.exit_code == 0, res.output
    assert "residual" in res.output and "index build" in res.output


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "--alpha", "1.5"], "alpha must lie in [0, 1), got 1.5"),
        (["run", "--b", "-2"], "b must be a finite number >= 0, got -2.0"),
        (["run", "--impl", "nope"], "unknown implementation 'nope'; known: dense"),
        (["run", "--m", "0"], "'0' must be at least 1"),
        (["run", "--m", "lots"], "is not an integer"),
        (["run", "--step-size", "0"], "step_size must be a finite number > 0"),
        (["verify", "--impl", "nope"], "unknown implementation 'nope'"),
    ],
)
def test_bad_input_gets_one_clear_line(runner, args, fragment):
    res = runner.invoke(cli, args)
    assert res.exit_code != 0
    assert fragment in res.output
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)


def test_run_refuses_what_does_not_fit(runner, monkeypatch):
    monkeypatch.setattr(memory_mod, "available_bytes", lambda: 256 << 20)
    res = runner.invoke(cli, ["run", "--impl", "dense", "--m", "2**24", "--d", "64"])
    assert res.exit_code != 0
    assert "needs about" in res.output and "GiB" in res.output
    assert isinstance(res.exception, SystemExit)


def test_verify_passes(runner):
    res = runner.invoke(cli, ["verify", "--steps", "3"])
    assert res.exit_code == 0, res.output
    assert "all compared steps agree" in res.output


def test_verify_fails_on_a_planted_bug(runner):
    from sublin_bench import registry

    from .test_conformance import _StepOff

    registry.register("mutant", _StepOff)
    res = runner.invoke(cli, ["verify", "--impl", "mutant", "--steps", "2"])
    assert res.exit_code == 1
    assert "disagree" in res.output
