"""README.md's two set-up commands stay true: CI runs exactly the test command, and the
main-job command exists."""

import re
from pathlib import Path

from click.testing import CliRunner

from sublin_bench.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set-up: two commands", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    ")]


def test_readme_has_exactly_two_setup_commands():
    cmds = readme_commands()
    assert len(cmds) == 2
    assert cmds[0] == 'pip install -e ".[test]" && sublin-bench scale'
    assert cmds[1].endswith("python -m pytest -q")


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in [line.strip() for line in ci]


def test_main_job_defaults_match_the_readme():
    res = CliRunner().invoke(cli, ["scale", "--help"])
    assert res.exit_code == 0
    assert re.search(r"2\*\*12", res.output) and re.search(r"2\*\*20", res.output)
