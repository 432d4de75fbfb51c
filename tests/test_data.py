"""Real data: the bundled data sets and users' files, the one preprocessing, what a problem
records of its data, conformance on real inputs, and bad files refused in one line."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from sublin_bench import ConfigError, ProblemSpec, make_problem, registry
from sublin_bench.cli import cli
from sublin_bench.conformance import AGREE, DISAGREE, TIE, compare
from sublin_bench.data import BUNDLED, dimension, load, separation

pytest.importorskip("sklearn")


@pytest.mark.parametrize("name, rows, d", [("digits", 1797, 61), ("breast_cancer", 569, 30), ("wine", 178, 13),
                                           ("diabetes", 442, 10)])
def test_bundled_data_sets_are_preprocessed_to_the_theorys_setting(name, rows, d):
    ds = load(name, n=50, seed=1)
    assert ds.X.shape == (50, d) and dimension(name) == d
    np.testing.assert_allclose(np.linalg.norm(ds.X, axis=1), 1.0, rtol=1e-12)
    whole = load(name, n=None)  # labels are centred and scaled over the whole data set, like the features
    assert abs(whole.y.mean()) < 1e-12 and abs(whole.y.std() - 1) < 1e-12
    assert set(np.round(ds.y, 12)) <= set(np.round(whole.y, 12))
    info = ds.info
    assert info["source"] == name and info["rows_available"] == rows and len(info["sha256"]) == 64
    assert info["preprocessing"]["separation"] == pytest.approx(separation(ds.X))
    if name != "diabetes":
        assert len(np.unique(ds.y)) == 2  # +-1 before centring: two values after


def test_digits_labels_are_one_vs_rest_of_class_0():
    ds = load("digits", n=None, seed=0)
    assert "one-vs-rest" in ds.info["preprocessing"]["labels"] and "class 0" in ds.info["preprocessing"]["labels"]
    assert ds.info["preprocessing"]["constant_columns_dropped"] == [0, 32, 39]
    assert np.isclose(np.mean(ds.y > 0), 178 / 1797)  # 178 zeros among the digits


def test_the_subset_is_seeded_and_recorded():
    a, b, c = load("wine", n=30, seed=3), load("wine", n=30, seed=3), load("wine", n=30, seed=4)
    assert np.array_equal(a.X, b.X) and a.info["subset_sha256"] == b.info["subset_sha256"]
    assert a.info["subset_sha256"] != c.info["subset_sha256"]
    with pytest.raises(ConfigError, match="fewer than n = 500"):
        load("wine", n=500)


def test_a_problem_records_its_data_and_checks_d():
    p = make_problem(ProblemSpec(m=1024, n=20, d=13, alpha=0.3, data="wine"))
    assert p.data["source"] == "wine" and p.data["rows_used"] == 20
    with pytest.raises(ConfigError, match="has d = 13 features"):
        make_problem(ProblemSpec(m=1024, n=20, d=12, alpha=0.3, data="wine"))
    assert make_problem(ProblemSpec(m=8, n=2, d=2, alpha=0.3)).data == {"source": "sphere"}


def test_duplicates_are_dropped_and_near_duplicates_counted(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    X[7] = X[3]  # an exact duplicate
    X[9] = X[4] + 1e-7  # a near-duplicate
    y = rng.integers(0, 2, 40)
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=y)
    ds = load(str(path))
    pre = ds.info["preprocessing"]
    assert pre["duplicates_dropped"] == 1 and ds.X.shape[0] == 39
    assert pre["near_duplicate_pairs"] == 1 and pre["separation"] < 1e-3
    assert ds.info["task"] == "classification"


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".npz"])
def test_files_load_the_same_data(tmp_path, suffix):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((25, 4)), rng.standard_normal(25)
    path = tmp_path / f"f{suffix}"
    if suffix == ".npz":
        np.savez(path, X=X, y=y)
    elif suffix == ".npy":
        np.save(path, np.column_stack([X, y]))
    else:
        np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="a,b,c,d,label", comments="")
    ds = load(str(path))
    np.savez(tmp_path / "ref.npz", X=X, y=y)
    ref = load(str(tmp_path / "ref.npz"))
    np.testing.assert_allclose(ds.X, ref.X, rtol=1e-12)
    np.testing.assert_allclose(ds.y, ref.y, rtol=1e-12)
    assert ds.info["task"] == "regression"


def _bad_files(tmp_path):
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((10, 3)), rng.integers(0, 2, 10)
    out = {}
    out["missing"] = (str(tmp_path / "nope.npz"), "does not exist")
    np.save(tmp_path / "flat.npy", np.arange(5.0))
    out["wrong shape"] = (str(tmp_path / "flat.npy"), "must hold a 2-D array")
    Xn = X.copy()
    Xn[4, 1] = np.nan
    np.savez(tmp_path / "nan.npz", X=Xn, y=y)
    out["NaN"] = (str(tmp_path / "nan.npz"), "NaN or infinite entries in rows 4")
    np.savez(tmp_path / "const.npz", X=np.ones((10, 3)), y=y)
    out["constant columns"] = (str(tmp_path / "const.npz"), "every column is constant")
    np.savez(tmp_path / "zero.npz", X=np.zeros((10, 3)), y=y)
    out["all-zero rows"] = (str(tmp_path / "zero.npz"), "every row of X is all zero")
    np.savez(tmp_path / "len.npz", X=X, y=y[:7])
    out["labels of the wrong length"] = (str(tmp_path / "len.npz"), "X has 10 rows but y has 7 labels")
    np.savez(tmp_path / "names.npz", A=X, b=y)
    out["wrong names"] = (str(tmp_path / "names.npz"), "has no array named X or y")
    (tmp_path / "text.csv").write_text("a,b\n1,x\n")
    out["not numeric"] = (str(tmp_path / "text.csv"), "not a numeric CSV")
    return out


def test_bad_data_files_get_one_clear_line_each(tmp_path):
    for what, (path, fragment) in _bad_files(tmp_path).items():
        res = CliRunner().invoke(cli, ["run", "--impl", "dense", "--m", "256", "--n", "5", "--data", path])
        assert res.exit_code != 0, (what, res.output)
        assert fragment in res.output.replace("\n", " "), (what, res.output)
        assert "Traceback" not in res.output, what


def test_some_constant_columns_and_zero_rows_are_dropped_and_said(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 4))
    X[:, 2] = 5.0
    X[6] = 0.0
    np.savez(tmp_path / "f.npz", X=X, y=rng.integers(0, 3, 12))
    res = CliRunner().invoke(cli, ["run", "--impl", "band", "--m", "512", "--n", "8", "--steps", "1",
                                   "--data", str(tmp_path / "f.npz")])
    assert res.exit_code == 0, res.output
    assert "constant columns dropped: [2]" in res.output and "all-zero rows dropped: [6]" in res.output
    assert "d=3" in res.output


@pytest.mark.parametrize("name", ["dense", "tree", "band", "band-implicit", "dense-stream"])
@given(source=st.sampled_from(["digits", "breast_cancer", "wine", "diabetes"]), seed=st.integers(0, 50),
       alpha=st.sampled_from([0.0, 0.24, 0.5]), n=st.integers(2, 24))
def test_conformance_on_real_data(name, source, seed, alpha, n):
    """Every exact implementation against dense on random subsets of every bundled data
    set. Correlated inputs make ties at the threshold likelier: a tie stops the
    comparison (documented), a disagreement fails."""
    spec = ProblemSpec(m=1500, n=n, d=dimension(source), alpha=alpha, seed=seed, data=source)
    c = compare(make_problem(spec), name, steps=4)
    assert c.status in (AGREE, TIE), c.message
    assert c.status != DISAGREE


def test_verify_on_real_data():
    res = CliRunner().invoke(cli, ["verify", "--data", "wine", "--impl", "band", "--impl", "tree", "--steps", "3"])
    assert res.exit_code == 0, res.output
    assert "data wine" in res.output and "all compared steps agree" in res.output


def test_a_sweep_records_its_data_and_what_the_data_does(tmp_path):
    from sublin_bench.report import analyse, write_report
    from sublin_bench.sweep import SweepConfig, run_sweep

    cfg = SweepConfig(impls=["dense", "band"], alphas=[0.5], m_min=2**9, m_max=2**10, m_factor=2, n=16,
                      d=dimension("breast_cancer"), steps=2, repeats=1, data="breast_cancer")
    records = run_sweep(cfg, tmp_path, progress=False)
    r = records[0]
    assert r["data"] == "breast_cancer" and r["data_source"]["sha256"] and r["data_source"]["rows_used"] == 16
    for key in ("overlap_mean", "overlap_expected", "overlap_sphere_expected", "separation", "ntk_lambda"):
        assert r[key] is not None and np.isfinite(r[key]), key
    text = write_report(analyse(records, cfg.as_dict(), {}), tmp_path).read_text()
    assert "What the data does to the method (data: breast_cancer)" in text
    with pytest.raises(ConfigError, match="another configuration"):
        run_sweep(SweepConfig(**(cfg.as_dict() | {"data": "sphere"})), tmp_path, progress=False)
    json.dumps(records)  # every record is plain JSON


def test_registry_memory_estimate_counts_the_data_problem():
    assert registry.memory_estimate("dense", ProblemSpec(m=256, n=20, d=13, alpha=0.3, data="wine")) > 0


def test_bundled_names_are_documented():
    from sublin_bench import data

    for name in BUNDLED:
        assert name in data.__doc__
