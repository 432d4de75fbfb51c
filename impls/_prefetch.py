"""A software prefetch for numba kernels: ``prefetch(arr, i)`` asks the CPU to start
loading the cache line of ``arr.flat[i]`` (row-major offset) without waiting for it.

The sparse kernels read rows of ``W`` (and of the index) at indices known a few
iterations ahead (the sorted moved neurons, the candidate lists); each read is a cache
miss at large m, and the loop body is too long for the processor to overlap many of them
by itself. Issuing the load a few iterations early lets those misses overlap. A prefetch
never faults and changes no value, so results are bit-for-bit those of the plain loop.
"""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic

__all__ = ["prefetch", "prefetch_row"]


@intrinsic
def prefetch(typingctx, arr, offset):
    """Prefetch the element at flat (C-order) ``offset`` of the C-contiguous ``arr``."""
    if not isinstance(arr, types.Array) or not isinstance(offset, types.Integer):
        return None
    sig = types.void(arr, offset)

    def codegen(context, builder, signature, args):
        aryty, offty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        off = context.cast(builder, args[1], offty, types.intp)
        ptr = builder.gep(ary.data, [off])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read, high temporal locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(inline="always")
def prefetch_row(A, r):
    """Prefetch row ``r`` of the C-contiguous 2-D ``A`` (every 64-byte line of it)."""
    w = A.shape[1]
    step = max(1, 64 // A.itemsize)
    base = r * w
    for k in range(0, w, step):
        prefetch(A, base + k)
    prefetch(A, base + w - 1)
