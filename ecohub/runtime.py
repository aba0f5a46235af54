"""Process-wide settings of the long-running processes: the gateway (``ecohub serve``),
its writer process and the API server.

- Event loop: uvloop where it is installed (a dependency on Linux and macOS), asyncio's
  own loop elsewhere.
- Garbage collector: these processes hold large long-lived state (each series' kept
  tail, the writer's open hours, a thousand connections) and allocate many short-lived
  objects per batch; the objects alive after start-up are frozen and the youngest
  generation is collected less often. Reference cycles are still collected.
- Memory allocator: on Linux with glibc, at most two arenas and a fixed mmap threshold,
  so that large blocks a batch frees go back to the system.

What each of these measured is in docs/performance.md ("Process settings").
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
