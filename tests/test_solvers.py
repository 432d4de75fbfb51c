"""The solvers (sublin_bench/solvers.py) and the products they rest on.

* ``J v`` and ``J^T u`` of every implementation, on its own fired pairs, against the
  explicit Jacobian built from dense's fired sets;
* every exact implementation with ``sketch`` and ``cg`` agrees with dense's exact step
  within the solve's own bound, and with ``gd`` with dense's ``gd``, step after step
  (conformance.compare documents the bound);
* a solver that lies about its solution is caught.
"""

import math

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from sublin_bench import ProblemSpec, make_problem, registry
from sublin_bench.conformance import AGREE, DISAGREE, compare
from sublin_bench.errors import ConfigError, SolverWarning
from sublin_bench.solvers import SOLVERS, SketchSolver, Solve, make_solver

EXACT = [n for n in registry.names() if registry.get(n).exact and registry.available(n)[0]]
ALL = [n for n in registry.names() if registry.available(n)[0]]


def explicit_jacobian(problem, ptr, idx):
    """J (n, m d) from fired sets, by its definition."""
    m, n, d = problem.m, problem.n, problem.d
    J = np.zeros((n, m, d))
    X = problem.X.astype(np.float64)
    a = problem.a.astype(np.float64)
    for i in range(n):
        for r in idx[ptr[i] : ptr[i + 1]]:
            J[i, r] = a[r] * X[i] / math.sqrt(m)
    return J.reshape(n, m * d)


@st.composite
def specs(draw):
    return ProblemSpec(m=draw(st.integers(1, 600)), n=draw(st.integers(1, 12)), d=draw(st.integers(1, 8)),
                       alpha=draw(st.floats(0.0, 0.7)), seed=draw(st.integers(0, 2**16)),
                       dtype=draw(st.sampled_from(["float64", "float32"])))


@pytest.mark.parametrize("name", ALL)
@given(spec=specs(), steps=st.integers(0, 2), data=st.data())
@settings(max_examples=25, deadline=None)
def test_products_match_the_explicit_jacobian(name, spec, steps, data):
    p = make_problem(spec)
    t = registry.create(name, p)
    t.run(steps)
    ptr, idx = t.active_sets()  # its own fired sets (an approximate one's found sets)
    J = explicit_jacobian(p, ptr, idx)
    u = np.asarray(data.draw(st.lists(st.floats(-10, 10), min_size=spec.n, max_size=spec.n)))
    rows, V = t.jt_u(u)
    full = np.zeros((spec.m, spec.d))
    full[rows] = V
    want = (J.T @ u).reshape(spec.m, spec.d)
    scale = (np.abs(J.T) @ np.abs(u)).reshape(spec.m, spec.d)
    tol = 4 * (spec.n + 2) * np.finfo(float).eps * scale + 1e-300
    assert np.all(np.abs(full - want) <= tol)
    assert set(rows.tolist()) == set(np.unique(idx).tolist())
    Vr = np.random.default_rng(1).standard_normal((rows.size, spec.d))
    v = np.zeros((spec.m, spec.d))
    v[rows] = Vr
    got = t.j_v(rows, Vr)
    want = J @ v.ravel()
    scale = np.abs(J) @ np.abs(v.ravel())
    note(f"{name} {spec.describe()}")
    assert np.all(np.abs(got - want) <= 4 * (spec.m * spec.d + 2) * np.finfo(float).eps * scale + 1e-300)


@pytest.mark.parametrize("solver", ["sketch", "cg", "gd"])
@pytest.mark.parametrize("name", EXACT)
@given(spec=specs(), eta=st.sampled_from([1.0, 0.5]))
@settings(max_examples=15, deadline=None)
def test_iterative_solvers_agree_with_dense(name, solver, spec, eta):
    c = compare(make_problem(spec), name, steps=3, step_size=eta, solver=solver)
    note(f"{spec.describe()}: {c.status} {c.message} {c.worst}")
    assert c.status != DISAGREE, c.message


@pytest.mark.parametrize("solver", ["sketch", "cg"])
def test_iterative_solvers_run_to_the_end_on_a_well_conditioned_problem(solver):
    c = compare(make_problem(ProblemSpec(m=2**13, n=24, d=16, alpha=0.3)), "band", steps=5, solver=solver)
    assert c.status == AGREE and c.steps_compared == 5, c.message


class _Lying(SketchSolver):
    """Planted bug: perturbs g by 1e-6 relative and claims a perfect solve."""

    def solve(self, trainer, G, r, fired):
        s = super().solve(trainer, G, r, fired)
        return Solve(s.g * (1 + 1e-6), s.rank, s.method, iterations=s.iterations, relative_residual=1e-16,
                     block=s._block)


def test_a_lying_solver_is_caught():
    c = compare(make_problem(ProblemSpec(m=2**12, n=16, d=8, alpha=0.3)), "band", steps=3, solver=_Lying())
    assert c.status == DISAGREE and "weights differ" in c.message, c.message


def test_an_unconverged_solve_is_caught():
    with pytest.warns(SolverWarning, match="stopped at relative residual"):
        c = compare(make_problem(ProblemSpec(m=2**12, n=16, d=8, alpha=0.3)), "band", steps=3,
                    solver=make_solver("cg", maxiter=1, jacobi=False))
    assert c.status == DISAGREE and "not its tolerance" in c.message, c.message


def test_cg_on_a_singular_gram_warns():
    """Two equal inputs make G singular; with labels that differ there, r is outside its
    range and CG cannot converge: the step says so instead of passing silently."""
    p = make_problem(ProblemSpec(m=2**11, n=6, d=4, alpha=0.3, seed=2))
    X = p.X.copy()
    X[1] = X[0]
    y = p.y.copy()
    y[1] = -y[0]
    from sublin_bench import Problem

    q = Problem.from_arrays(X, y, m=2**11, alpha=0.3, seed=2)
    tr = registry.create("band", q)
    tr.set_solver("cg", maxiter=200)
    with pytest.warns(SolverWarning, match="cg assumes a non-singular Gram"):
        info = tr.step()
    assert info.solver_residual > 1e-3


def test_sketch_preconditioning_is_independent_of_m():
    """BPSW21's point: the preconditioned system is well conditioned whatever m (and the
    Gram's own conditioning), so the iteration count does not grow with m."""
    its, conds = [], []
    for m in (2**12, 2**14, 2**16):
        t = registry.create("band", make_problem(ProblemSpec(m=m, n=32, d=16, alpha=0.3)), solver="sketch")
        info = t.step()
        its.append(info.solver_iterations)
        conds.append(info.gram_solve.preconditioned_condition)
        assert info.solver_residual < 1e-8
    assert max(conds) <= 10, conds
    assert max(its) - min(its) <= 6, its


@pytest.mark.parametrize("name", ["tree", "band", "band-implicit", "lsh"])
@pytest.mark.parametrize("solver", ["sketch", "cg", "gd"])
def test_matrix_free_solvers_never_form_the_counts(name, solver, monkeypatch):
    """The point of the iterative solvers: a step forms neither the intersection counts
    (O(sum_r c_r^2)) nor the n x n Gram; the Gram's spectrum, a diagnostic, is formed from
    the step's own fired pairs when read afterwards, and equals the one from the counts."""
    problem = make_problem(ProblemSpec(m=2**12, n=12, d=6, alpha=0.3, seed=3))
    tr = registry.create(name, problem, solver=solver)
    cls = type(tr)
    real = cls._counts
    before = []
    for _ in range(3):
        before.append(tr.gram())  # G_t, read outside the step
        monkeypatch.setattr(cls, "_counts", lambda self: pytest.fail("a matrix-free step formed the counts"))
        info = tr.step()
        monkeypatch.setattr(cls, "_counts", real)
        fired = np.diagonal(before[-1]) > 0
        lam = np.linalg.eigvalsh(before[-1][np.ix_(fired, fired)])
        assert info.gram_condition == pytest.approx(lam[-1] / lam[0], rel=1e-6)
        assert info.gram_rank == fired.sum()


def test_gd_descends():
    t = registry.create("band", make_problem(ProblemSpec(m=2**13, n=16, d=8, alpha=0.3)), solver="gd")
    res = [i.residual_norm for i in t.run(8)]
    assert all(b < a for a, b in zip(res, res[1:])), res


def test_solver_is_reported_and_the_default_is_exact():
    p = make_problem(ProblemSpec(m=512, n=8, d=4, alpha=0.2))
    assert registry.create("band", p).solver.name == "exact"
    info = registry.create("band", p, solver="cg").step()
    assert info.solver == "cg" and info.solver_iterations > 0 and info.as_dict()["solver"] == "cg"
    assert set(SOLVERS) == {"exact", "sketch", "cg", "gd"}


@pytest.mark.parametrize("args,msg", [
    (("newton",), "unknown solver"), (("sketch",), None), (("gd",), None),
])
def test_make_solver_names(args, msg):
    if msg:
        with pytest.raises(ConfigError, match=msg):
            make_solver(*args)
    else:
        assert make_solver(*args).name == args[0]


@pytest.mark.parametrize("name,kw,msg", [
    ("sketch", {"tol": 0}, "tolerance"), ("sketch", {"gamma": 0.5}, "gamma"), ("cg", {"maxiter": 0}, "maxiter"),
    ("gd", {"rate": 2.0}, "rate"), ("cg", {"bogus": 1}, "bad option"),
])
def test_bad_solver_options_are_refused(name, kw, msg):
    with pytest.raises(ConfigError, match=msg):
        make_solver(name, **kw)


def test_create_refuses_an_unknown_solver_before_building():
    with pytest.raises(ConfigError, match="unknown solver"):
        registry.create("dense", make_problem(ProblemSpec(m=64, n=4, d=3, alpha=0.2)), solver="lu")


def test_converge_reaches_eps_resumes_and_refuses_another_configuration(tmp_path):
    from click.testing import CliRunner

    from sublin_bench.cli import cli

    args = ["converge", "--impl", "band", "--solver", "exact", "--solver", "cg", "--m", "2**12", "--n", "8",
            "--d", "4", "--max-steps", "50", "--out", str(tmp_path)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2
    import json

    recs = [json.loads(x) for x in lines]
    assert all(x["status"] == "reached" and x["final_relative_residual"] <= 1e-8 for x in recs)
    assert all(x["trace"][0]["seconds"] > 0 and x["seconds"] >= x["trace"][0]["seconds"] for x in recs)
    assert (tmp_path / "report.md").exists() and (tmp_path / "converge.png").exists()
    r = CliRunner().invoke(cli, args + ["--solver", "gd"])  # one more combination: the others are kept
    assert r.exit_code == 0 and "resuming: 2 of 3" in r.output, r.output
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 3
    r = CliRunner().invoke(cli, [*args[:-2], "--eps", "1e-6", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "another configuration" in r.output


@pytest.mark.parametrize("text, want", [
    ("gd", ("gd", {})), ("gd:rate=1.5", ("gd", {"rate": 1.5})),
    ("sketch:gamma=8,tol=1e-8", ("sketch", {"gamma": 8, "tol": 1e-8})), ("cg:jacobi=false", ("cg", {"jacobi": False})),
])
def test_parse_solver(text, want):
    from sublin_bench.solvers import parse_solver

    assert parse_solver(text) == want


@pytest.mark.parametrize("text, msg", [("gd:rate=3", "rate must be a number in"), ("gd:rate", "key=value"),
                                       ("lu", "unknown solver 'lu'"), ("gd:speed=2", "bad option for solver 'gd'")])
def test_parse_solver_refuses(text, msg):
    from sublin_bench.solvers import parse_solver

    with pytest.raises(ConfigError, match=msg):
        parse_solver(text)


def test_converge_takes_solver_options(tmp_path):
    """gd's rule is searched by running several rates side by side; each is its own
    combination, labelled as written, and the rate reaches the solver."""
    import json

    from click.testing import CliRunner

    from sublin_bench.cli import cli

    args = ["converge", "--impl", "band", "--solver", "gd:rate=0.5", "--solver", "gd:rate=1.5", "--m", "2**12",
            "--n", "8", "--d", "16", "--eps", "1e-6", "--max-steps", "400", "--out", str(tmp_path)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    recs = {x["solver"]: x for x in map(json.loads, (tmp_path / "results.jsonl").read_text().splitlines())}
    assert recs["gd:rate=0.5"]["solver_options"]["rate"] == 0.5 and recs["gd:rate=1.5"]["solver_options"]["rate"] == 1.5
    assert all(r["status"] == "reached" for r in recs.values())
    assert recs["gd:rate=1.5"]["steps"] < recs["gd:rate=0.5"]["steps"]  # the rate reached the solver
    r = CliRunner().invoke(cli, [*args[:4], "gd:rate=7", *args[7:]])
    assert r.exit_code == 2 and "rate must be a number in (0, 2)" in r.output
