"""Block sizes of the statistics driver: CPU cache-sized tiles, or device-sized tiles on a GPU.

On the CPU a rows kernel works on ~2**18 elements at a time (its temporaries stay in cache) and a
pairs kernel on operand blocks of ~2**22 elements. On a GPU those sizes would cut a 1,170 × 100k
Wilcoxon into ~600 blocks, each a handful of small kernel launches and a host synchronisation;
the device wants few large blocks, bounded by its memory: :func:`gpu_block_sizes`.
"""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

import numpy as np


class BlockSizes(NamedTuple):
    """Elements per rows-kernel call, elements per pairs operand block, most features per pairs block."""

    row_elements: int
    pair_elements: int
    max_features: int


CPU_BLOCKS = BlockSizes(row_elements=1 << 18, pair_elements=1 << 22, max_features=2048)
GPU_TEMPORARIES = 16  # float64 arrays of a block's size a kernel holds at once (sorted copies, ranks, ties, ...)
GPU_MEMORY_SHARE = 4  # a block uses at most 1/4 of the device (several worker threads, the pool, inputs)
GPU_MAX_ELEMENTS = 1 << 26  # beyond this a block is already ~1 s of device work: nothing left to amortise
GPU_MAX_FEATURES = 4096  # fa × fb intermediates of a pairs block: 4096² float64 = 134 MB each


def gpu_block_sizes(device_bytes: int) -> BlockSizes:
    """Block sizes for a GPU with ``device_bytes`` of memory (a power of two of elements, never below the CPU's).

    ``elements = device_bytes / (GPU_MEMORY_SHARE · 8 B · GPU_TEMPORARIES)``, rounded down to a power
    of two and capped at :data:`GPU_MAX_ELEMENTS`: 2**26 on an 80 GB H100 or a 141 GB H200, 2**24 on 8 GiB.
    """
    if device_bytes <= 0:
        raise ValueError(f"device_bytes={device_bytes}: give the GPU's memory in bytes (cupy.cuda.Device().mem_info)")
    budget = device_bytes // (GPU_MEMORY_SHARE * 8 * GPU_TEMPORARIES)
    elements = 1 << max(0, int(budget).bit_length() - 1)
    elements = max(CPU_BLOCKS.row_elements, min(GPU_MAX_ELEMENTS, elements))
    pair = max(CPU_BLOCKS.pair_elements, elements // 2)
    return BlockSizes(row_elements=elements, pair_elements=pair, max_features=GPU_MAX_FEATURES)


def block_sizes(xp: ModuleType) -> BlockSizes:
    """:data:`CPU_BLOCKS` for NumPy; for CuPy :func:`gpu_block_sizes` of the current device's total memory."""
    if xp is np:
        return CPU_BLOCKS
    _free, total = xp.cuda.Device().mem_info  # total, not free: an RMM pool holds the free memory itself
    return gpu_block_sizes(int(total))


def rows_per_block(n_columns: int, sizes: BlockSizes) -> int:
    """Feature rows per rows-kernel call when a row has ``n_columns`` samples (x and y together)."""
    return max(1, sizes.row_elements // max(1, n_columns))
