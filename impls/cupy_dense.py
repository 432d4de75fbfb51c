"""``cupy-dense``: the dense reference on an NVIDIA GPU (cuBLAS products, blocked over m).

The same algorithm as :mod:`impls.dense`, with CuPy as the array module: the weights and the
activation matrix live on the device; predictions, counts, active sets and weights come
back as host numpy arrays, and ``step()`` synchronises the stream before it returns.
"""

from __future__ import annotations

from sublin_bench.impls._gpu import check_device_fits, cupy_status, require_cupy
from sublin_bench.impls.dense import DenseTrainer


class CupyDenseTrainer(DenseTrainer):
    name = "cupy-dense"

    def __init__(self, problem, *, step_size=1.0, block=None):
        self.xp = require_cupy()
        if block is None:
            block = min(problem.m, 1 << 20)  # large blocks keep cuBLAS busy
        check_device_fits(self.xp, DenseTrainer.memory_estimate(problem.spec) + 24 * block * problem.n,
                          f"cupy-dense for {problem.spec.describe()}")
        super().__init__(problem, step_size=step_size, block=block)

    @classmethod
    def memory_estimate(cls, spec) -> int:
        return 64 * spec.n * spec.n  # host side: the per-step transfers only

    @classmethod
    def available(cls):
        cp, reason = cupy_status()
        return cp is not None, reason

    def _host(self, arr):
        return self.xp.asnumpy(arr)

    def _sync(self):
        self.xp.cuda.get_current_stream().synchronize()
