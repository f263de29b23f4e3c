"""Host memory on CPU, through glibc malloc's options: hand freed buffers back (training) or keep them for reuse (decoding).

glibc's ``malloc`` serves a block of at least ``M_MMAP_THRESHOLD`` bytes by its own ``mmap`` and
returns it to the system on ``free``; smaller blocks come from the heap, which keeps what is freed.
The threshold starts at 128 KiB but glibc raises it to the size of every mmapped block that is freed
(up to 32 MiB), so after one training step nearly every activation tensor of a Whisper batch lives
in the heap, whose fragments add to the resident size beyond what the step's tensors need. Setting
the threshold explicitly turns that adjustment off (``mallopt(3)``): less resident memory per step,
more time per step (every large tensor is a fresh mapping whose pages fault in), hence opt-in
(``--return_freed_memory true`` of ``espnet_cs.bin.train``). Both effects are measured by
``benchmarks/train_step.py``, results in ``benchmarks/RESULTS.md``. No Python library exposes
``mallopt``, hence ``ctypes``.

Decoding wants the opposite (:func:`serve_from_heap`): a batch of 16 thirty-second windows makes
tensors above glibc's 32-MiB ceiling at every encoder layer (Whisper-base's encoder states hold
16 x 1500 x 512 floats), each a fresh mapping whose pages fault in again at every batch; served from
the heap, they reuse the memory their predecessors freed (measured in ``benchmarks/RESULTS.md``).

Both are glibc's options: where another allocator replaces glibc's ``malloc`` (tcmalloc, which the
recipes' ``path.sh`` preloads, or jemalloc), they change nothing and say so
(:func:`allocator_in_use`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
from pathlib import Path

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4  # glibc's malloc.h
# Allocators that replace glibc's malloc when preloaded (LD_PRELOAD), by their Debian packages' sonames.
PRELOADABLE_ALLOCATORS = {"tcmalloc": "libtcmalloc_minimal.so.4", "jemalloc": "libjemalloc.so.2"}
# What path.sh exports with each: tcmalloc keeps freed pages for reuse (release rate 0, as
# serve_from_heap does for glibc: decoding's 30-s batches do not fault them in again; a training
# step's peak is the same) and writes no line per allocation of a GiB or more (a large checkpoint).
ALLOCATOR_SETTINGS = {
    "tcmalloc": {"TCMALLOC_RELEASE_RATE": "0", "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)},
    "jemalloc": {},
}


def preload_environment(allocator: str) -> dict[str, str]:
    """The environment variables that run a process on ``allocator``'s malloc, as ``path.sh`` sets them."""
    return {"LD_PRELOAD": PRELOADABLE_ALLOCATORS[allocator], **ALLOCATOR_SETTINGS[allocator]}


def environment_for(allocator: str) -> dict[str, str]:
    """This process's environment for a child that runs ``allocator``'s malloc (``glibc``: none preloaded)."""
    settings = {"LD_PRELOAD", *(name for names in ALLOCATOR_SETTINGS.values() for name in names)}
    env = {name: value for name, value in os.environ.items() if name not in settings}
    return env if allocator == "glibc" else {**env, **preload_environment(allocator)}


DEFAULT_THRESHOLD = 1 << 20  # bytes: activations of a Whisper batch are MiBs, small Python objects stay in the heap
MAX_THRESHOLD = 32 << 20  # glibc ignores larger values on 64-bit systems (2.36 without saying so)


def fix_mmap_threshold(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Serve every allocation of at least ``threshold`` bytes by its own mapping from now on.

    Returns False, changing nothing, where the C library is not glibc (macOS, musl), and raises
    ValueError for a threshold glibc would not take (negative, or above 32 MiB on 64-bit systems).
    """
    if not 0 <= threshold <= MAX_THRESHOLD:
        raise ValueError(f"an mmap threshold of {threshold} bytes is outside glibc's 0 to {MAX_THRESHOLD}")
    return set_malloc_options({M_MMAP_THRESHOLD: threshold})


def serve_from_heap() -> bool:
    """Serve every allocation from the heap and keep freed memory there (up to 2 GiB at its top) from now on.

    The process's resident size then stays at its peak instead of falling between batches. Returns
    False, changing nothing, where the C library is not glibc.
    """
    return set_malloc_options({M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 2**31 - 1})


def allocator_in_use() -> str:
    """Whose ``malloc`` this process runs: ``tcmalloc`` or ``jemalloc`` where one is loaded (preloaded,
    as ``path.sh`` does), else ``glibc`` (Linux with glibc) or ``system``."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return "system"
    mapped = {Path(line.split()[-1]).name for line in Path("/proc/self/maps").read_text().splitlines() if "/" in line}
    for name in PRELOADABLE_ALLOCATORS:
        if any(file.startswith(f"lib{name}") for file in mapped):
            return name
    return "glibc"


def set_malloc_options(options: dict[int, int]) -> bool:
    """``mallopt(param, value)`` for each item (params from glibc's malloc.h); False, changing
    nothing, where malloc is not glibc's (another C library, or a preloaded allocator)."""
    if (allocator := allocator_in_use()) != "glibc":
        logging.info(f"malloc is {allocator}'s, not glibc's: its options stay as they are")
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    for param, value in options.items():
        if libc.mallopt(param, value) != 1:
            raise RuntimeError(f"glibc's mallopt refused the value {value} for parameter {param}")
    return True
