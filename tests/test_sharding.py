"""Sharded runs on a local Dask cluster of 2 single-threaded process workers
(sublin_bench/sharding.py): conformance with single-process dense, uneven shards, a worker
killed mid-run, and bad input."""

import os
import signal
import time

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("distributed")

from sublin_bench import ProblemSpec, make_problem, registry  # noqa: E402
from sublin_bench.cli import cli  # noqa: E402
from hypothesis import HealthCheck, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sublin_bench.conformance import AGREE, DISAGREE, compare  # noqa: E402
from sublin_bench.errors import ConfigError  # noqa: E402
from sublin_bench.generator import W_BLOCK  # noqa: E402
from sublin_bench.sharding import Cluster, ShardLostError, ShardProblem, shard_bounds, sharded  # noqa: E402


@st.composite
def specs(draw):
    return ProblemSpec(m=draw(st.one_of(st.integers(1, 40), st.integers(41, 3000))), n=draw(st.integers(1, 24)),
                       d=draw(st.integers(1, 12)), alpha=draw(st.floats(0.0, 0.9)), seed=draw(st.integers(0, 2**20)),
                       dtype=draw(st.sampled_from(["float64", "float32"])))


@pytest.fixture(scope="module")
def cluster():
    with Cluster(2, timeout=60) as cl:
        yield cl


# -- without a cluster ------------------------------------------------------------------------


@pytest.mark.parametrize("lo, hi", [(0, W_BLOCK), (W_BLOCK, 2 * W_BLOCK + 5), (7, W_BLOCK + 300), (1000, 1001)])
def test_a_shard_problem_is_its_rows_of_the_parent(lo, hi):
    parent = make_problem(ProblemSpec(m=2 * W_BLOCK + 10, n=3, d=4, alpha=0.3, seed=5))
    shard = ShardProblem(parent, lo, hi)
    assert shard.m == hi - lo and shard.b == parent.b  # the parent's threshold, not one for width hi - lo
    np.testing.assert_array_equal(shard.W0, parent.W0[lo:hi])
    np.testing.assert_array_equal(shard.a, parent.a[lo:hi])
    got = shard.map_blocks(lambda start, W, a: (start, W.copy(), a.copy()))
    np.testing.assert_array_equal(np.concatenate([g[1] for g in got]), parent.W0[lo:hi])


def test_shard_bounds():
    assert shard_bounds(4 * W_BLOCK, 2) == [(0, 2 * W_BLOCK), (2 * W_BLOCK, 4 * W_BLOCK)]
    assert shard_bounds(3 * W_BLOCK + 1, 2) == [(0, 2 * W_BLOCK), (2 * W_BLOCK, 3 * W_BLOCK + 1)]  # on blocks
    assert shard_bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert shard_bounds(10, 1, bounds=[0, 1, 10]) == [(0, 1), (1, 10)]
    with pytest.raises(ConfigError, match="every shard needs at least one neuron; use at most 10 shards"):
        shard_bounds(10, 11)
    with pytest.raises(ConfigError, match="increase strictly from 0 to m = 10"):
        shard_bounds(10, 2, bounds=[0, 5, 5, 10])


def test_sampled_problems_are_refused():
    p = make_problem(ProblemSpec(m=2**12, n=4, d=3, alpha=0.5, init="sampled"))
    if p.sample is None:
        pytest.skip("sampling not possible for this spec")
    with pytest.raises(ConfigError, match="a sampled problem cannot be sharded"):
        ShardProblem(p, 0, 10)


def test_an_unreachable_scheduler_is_one_clear_line():
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        Cluster(scheduler="tcp://127.0.0.1:9", connect_timeout=2)
    assert time.monotonic() - t0 < 30
    res = CliRunner().invoke(cli, ["run", "--impl", "band", "--m", "2**10", "--scheduler", "tcp://127.0.0.1:9"])
    assert res.exit_code != 0 and "cannot reach the Dask scheduler" in res.output and "Traceback" not in res.output


# -- on the cluster ---------------------------------------------------------------------------


def test_workers_run_one_thread(cluster):
    env = cluster.client.run(lambda: (os.environ.get("NUMBA_NUM_THREADS"), os.environ.get("OPENBLAS_NUM_THREADS")))
    assert set(env.values()) == {("1", "1")}
    assert cluster.describe()["threads"] == [1] and cluster.describe()["workers"] == 2


@pytest.mark.parametrize("impl", ["dense", "band", "band-implicit", "dense-stream"])
@pytest.mark.parametrize("spec", [
    ProblemSpec(m=2**12, n=16, d=8, alpha=0.3, seed=1),
    ProblemSpec(m=3 * W_BLOCK // 2, n=12, d=6, alpha=0.5, seed=2),  # shards on block boundaries, one partial
    ProblemSpec(m=2**11, n=8, d=5, alpha=0.24, seed=3, dtype="float32"),
])
def test_sharded_runs_agree_with_single_process_dense(cluster, impl, spec):
    c = compare(make_problem(spec), impl, steps=4, create=cluster.create)
    assert c.status == AGREE and c.steps_compared == 4, c.message


@pytest.mark.parametrize("impl", ["dense", "band", "tree"])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=specs(), shards=st.integers(1, 4), eta=st.sampled_from([1.0, 0.5, 1.5]))
def test_sharded_agree_with_dense_under_hypothesis(cluster, impl, spec, shards, eta):
    """Any width (down to one neuron per shard), n, d, alpha, dtype and number of shards."""
    shards = min(shards, spec.m)
    c = compare(make_problem(spec), impl, steps=3, step_size=eta,
                create=lambda name, p, **kw: cluster.create(name, p, shards=shards, **kw))
    note(f"{spec.describe()} shards={shards}: {c.status} {c.message}")
    assert c.status != DISAGREE, c.message


def test_a_step_without_work_still_reports_its_counter(cluster):
    """Found by the test above: m = 29, alpha = 0.9, one input fires nothing, so every
    shard's work is 0; summing counters with ``+`` dropped the key."""
    from sublin_bench.sharding import _summed

    assert _summed([{"work": 0, "x": 1}, {"work": 0}]) == {"work": 0, "x": 1}
    spec = ProblemSpec(m=29, n=1, d=1, alpha=0.9, seed=2992, dtype="float32")
    c = compare(make_problem(spec), "band", steps=3, create=lambda name, p, **kw: cluster.create(name, p, shards=2, **kw))
    assert c.status != DISAGREE, c.message


@pytest.mark.parametrize("bounds", [[0, 1, 2**12], [0, 100, 101, 3000, 2**12]])
def test_uneven_shards_agree(cluster, bounds):
    problem = make_problem(ProblemSpec(m=2**12, n=10, d=6, alpha=0.3, seed=4))

    def create(name, problem, **kw):
        return cluster.create(name, problem, bounds=bounds, **kw)

    c = compare(problem, "band", steps=4, create=create)
    assert c.status == AGREE and c.steps_compared == 4, c.message


def test_the_sharded_interface(cluster):
    problem = make_problem(ProblemSpec(m=2**12, n=10, d=6, alpha=0.3, seed=6))
    tr = cluster.create("band", problem, shards=3)
    ref = registry.create("band", problem)
    assert tr.shards == 3 and len(tr.shard_build_seconds) == 3 and tr.build_work
    infos = tr._wait([a.info() for a in tr._actors], "info")
    assert [i["threads"] for i in infos] == [1, 1, 1]  # the block pool of each shard: one thread
    for _ in range(3):
        for got, want in zip(tr.active_sets(), ref.active_sets()):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(tr.gram(), ref.gram())  # summed counts: exact integers
        a, b = tr.step(), ref.step()
        assert (a.flips, a.moved, a.fired_max) == (b.flips, b.moved, b.fired_max)
    assert tr.counters["neurons_moved"] == ref.counters["neurons_moved"]
    tr.close()


def test_bad_input_on_a_cluster(cluster):
    problem = make_problem(ProblemSpec(m=8, n=3, d=2, alpha=0.3))
    with pytest.raises(ConfigError, match="9 shards for m = 8 neurons"):
        cluster.create("dense", problem, shards=9)
    with pytest.raises(ConfigError, match="a sharded run solves exactly"):
        cluster.create("dense", problem, solver="cg")


def test_a_version_mismatch_is_refused(cluster):
    """A worker that runs another checkout is named, and nothing is left running."""
    addr = cluster.client.scheduler.address

    def patch():
        import sublin_bench.provenance as p

        real = p.provenance
        p._real = real
        p.provenance = lambda: real() | {"commit": "0" * 40}

    def unpatch():
        import sublin_bench.provenance as p

        p.provenance = p._real

    cluster.client.run(patch)
    try:
        with pytest.raises(ConfigError, match="runs another version .*commit"):
            Cluster(scheduler=addr)
    finally:
        cluster.client.run(unpatch)


def test_cli_run_and_verify_with_workers():
    res = CliRunner().invoke(cli, ["run", "--impl", "band", "--m", "2**12", "--n", "8", "--d", "4", "--steps", "3",
                                   "--workers", "2", "--json"])
    assert res.exit_code == 0, res.output
    import json

    out = json.loads(res.output)
    assert out["cluster"]["workers"] == 2 and out["cluster"]["shards"] == 2 and len(out["steps"]) == 3
    res = CliRunner().invoke(cli, ["verify", "--impl", "band", "--m", "2**12", "--n", "8", "--workers", "2"])
    assert res.exit_code == 0 and "sharded over 2 Dask worker(s)" in res.output, res.output


def test_scale_with_workers_records_them_and_is_not_pooled_with_single_process(tmp_path):
    from sublin_bench.sweep import SweepConfig, run_sweep

    cfg = dict(impls=["band"], alphas=[0.5], m_min=2**10, m_max=2**11, m_factor=2, n=6, d=4, steps=2, repeats=1)
    with sharded(2) as cl:
        recs = run_sweep(SweepConfig(**cfg, workers=len(cl.workers)), tmp_path, progress=False)
    assert all(r["status"] == "ok" and r["workers"] == 2 and r["shards"] == 2 for r in recs)
    with pytest.raises(ConfigError, match="workers: 2 -> 0"):
        run_sweep(SweepConfig(**cfg), tmp_path, progress=False)


def test_a_killed_worker_stops_the_run_with_a_clear_error_and_it_can_be_restarted():
    import psutil

    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    problem = make_problem(ProblemSpec(m=2**12, n=8, d=4, alpha=0.3, seed=7))
    with Cluster(2, timeout=30) as cl:
        tr = cl.create("band", problem)
        tr.step()
        victim = tr.workers[1]
        pid = cl.client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(ShardLostError, match=r"shard 1 .* on worker .* failed during step 1"):
            tr.step()
        assert time.monotonic() - t0 < 30
        with pytest.raises(ShardLostError, match="closed"):
            tr.step()
        # the nanny restarts the worker; a new run rebuilds every shard and agrees again
        cl.client.wait_for_workers(2, timeout=30)
        c = compare(problem, "band", steps=3, create=cl.create)
        assert c.status == AGREE, c.message
    # multiprocessing's resource tracker is one helper per interpreter (it exits with it), not the cluster's
    mine = [p for p in psutil.Process().children(recursive=True)
            if p.pid not in children_before and "resource_tracker" not in " ".join(p.cmdline())]
    _, alive = psutil.wait_procs(mine, timeout=15)  # the cluster's processes exit within seconds of close()
    assert not alive, f"processes left running: {[p.pid for p in alive]}"


def test_weights_at_asks_each_shard(cluster):
    problem = make_problem(ProblemSpec(m=3000, n=6, d=4, alpha=0.3, seed=8))
    tr = cluster.create("band-implicit", problem, bounds=[0, 1000, 1001, 3000])
    ref = registry.create("dense", problem)
    tr.step(), ref.step()
    idx = np.array([2999, 0, 1000, 1500, 999, 1000])
    np.testing.assert_allclose(tr.weights_at(idx), ref.weights()[idx], rtol=0, atol=1e-14)
