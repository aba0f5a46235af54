"""Process-wide settings of the long-running processes: the gateway (``ecohub serve``),
its writer process and the API server.

Event loop. The gateway and the simulator run on uvloop where it is installed (a
dependency on Linux and macOS): its sockets and transports are written in C. On the
gateway benchmark it cut the CPU per packet by about a tenth in the gateway and in the
load generator (``python -m benchmarks.hj212_gateway``, which prints CPU per packet by
process). Elsewhere they run on asyncio's own loop, unchanged.

Garbage collector. These processes hold large long-lived state (each series' kept tail,
the writer's open hours, a thousand connections) and allocate many short-lived objects
per batch. With CPython's default thresholds the collector ran a full collection every
few batches, scanning all of that state each time: in ``python -m benchmarks.writer``
22 full collections took 3.6 s of a 24 s run (measured with ``gc.callbacks``). Here the
objects alive after start-up are frozen (never scanned again) and the youngest
generation is collected after 50,000 net allocations instead of 700; reference cycles
are still collected. The API gains too: a request that builds a long series (thousands
of rows) used to trigger full collections over the app and its caches (p95 of the year
series in-process fell from 121 to 71 ms when they were frozen).

Memory allocator. On Linux with glibc, large blocks freed by a batch were kept by the
allocator (its threshold for giving them back to the system grows with each one freed),
and each thread got an arena of its own; the writer process's peak memory then grew
batch after batch. With at most two arenas and a fixed 128 KiB threshold, set with
``mallopt`` at start, the gateway and its writer process together peaked at 472 MB
instead of 513 MB on the PostgreSQL gateway benchmark, as fast as before.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

ResultT = TypeVar("ResultT")

YOUNGEST_GENERATION_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Freeze what start-up allocated and collect less often (see the module docstring)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNGEST_GENERATION_THRESHOLD, 20, 20)


# mallopt parameters, from glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MALLOC_ARENA_MAX = 2
MALLOC_MMAP_THRESHOLD = 128 * 1024


def tune_memory_allocator() -> bool:
    """Limit glibc's arenas and fix its mmap threshold (see the module docstring); call
    it before the process starts threads. False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: leave their allocator alone
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_ARENA_MAX, MALLOC_ARENA_MAX)
        and mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
    )


def run_event_loop(main: Coroutine[Any, Any, ResultT]) -> ResultT:
    """``asyncio.run(main)``, on uvloop when it is installed (see the module docstring)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
