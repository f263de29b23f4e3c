"""espnet_cs.host_memory: freed activation-sized blocks leave the resident size at once (training), or
large blocks are served from the heap and reused without faulting pages in again (decoding)."""

from __future__ import annotations

import ctypes.util
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from espnet_cs.host_memory import (
    PRELOADABLE_ALLOCATORS,
    environment_for,
    fix_mmap_threshold,
    preload_environment,
    serve_from_heap,
)

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
ROOT = Path(__file__).resolve().parents[1]
REPORT = "from espnet_cs.host_memory import allocator_in_use, fix_mmap_threshold; print(allocator_in_use(), fix_mmap_threshold())"

# Keep every other 2-MiB tensor alive: the freed ones are holes between live blocks, which a heap
# cannot give back; with their own mappings they are unmapped on free. Prints the MiB freed from
# the resident size.
FRAGMENT = """
import sys
from pathlib import Path
import torch
from espnet_cs.host_memory import fix_mmap_threshold

def resident_mib():
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024

if sys.argv[1] == "fixed":
    fix_mmap_threshold()
else:  # glibc as it starts: one freed 8-MiB block raises its threshold above 2 MiB
    first = torch.ones(2 << 20)
    del first
blocks = [torch.ones(1 << 19) for _ in range(200)]  # 200 x 2 MiB
before = resident_mib()
del blocks[::2]
print(before - resident_mib())
"""


def freed_mib(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", FRAGMENT, mode], check=True, capture_output=True, text=True, env=without_preload()
    )
    return float(out.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_fixed_threshold_returns_freed_blocks_between_live_ones():
    assert freed_mib("fixed") > 0.9 * 200
    assert freed_mib("default") < 0.1 * 200  # what the fix changes


# Two 64-MiB tensors per round, as a layer's input and output above glibc's 32-MiB mmap ceiling.
# Prints the page faults of each round.
REUSE = """
import resource, sys
import torch
from espnet_cs.host_memory import serve_from_heap

if sys.argv[1] == "heap":
    serve_from_heap()
counts = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = torch.ones(16 << 20)
    b = torch.ones(16 << 20) + a
    del a, b
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(*counts)
"""


def page_faults(mode: str) -> list[int]:
    out = subprocess.run(
        [sys.executable, "-c", REUSE, mode], check=True, capture_output=True, text=True, env=without_preload()
    )
    return [int(n) for n in out.stdout.split()]


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_heap_served_blocks_are_reused_without_faulting_in():
    pages = 3 * (64 << 20) // 4096  # two inputs and a sum of 64 MiB each
    assert page_faults("heap")[-1] < 0.01 * pages
    assert page_faults("default")[-1] > 0.9 * pages  # fresh mappings every round: what it changes


def test_serve_from_heap_leaves_other_c_libraries_alone(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert serve_from_heap() is False


@pytest.mark.parametrize("threshold", [-1, (32 << 20) + 1])
def test_threshold_glibc_would_ignore_raises(threshold):
    with pytest.raises(ValueError, match="outside glibc's"):
        fix_mmap_threshold(threshold)


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert fix_mmap_threshold() is False


@pytest.mark.parametrize("option, fixed", [("true", True), ("false", False)])
def test_training_applies_it_only_when_asked(monkeypatch, option, fixed):
    from espnet2.tasks.abs_task import AbsTask

    import espnet_cs.task
    from espnet_cs.task import CSASRTask

    calls = []
    monkeypatch.setattr(espnet_cs.task, "fix_mmap_threshold", lambda: calls.append("fixed"))
    monkeypatch.setattr(AbsTask, "main_worker", classmethod(lambda cls, args: calls.append("trained")))
    args = CSASRTask.get_parser().parse_args(["--return_freed_memory", option])
    CSASRTask.main_worker(args)
    assert calls == (["fixed", "trained"] if fixed else ["trained"])


def without_preload() -> dict[str, str]:
    """This environment without a preloaded allocator or a choice for path.sh: children run glibc's malloc."""
    return {k: v for k, v in environment_for("glibc").items() if k != "ESPNET_CS_MALLOC"}


def test_a_child_environment_carries_only_the_chosen_allocator(monkeypatch):
    monkeypatch.setenv("LD_PRELOAD", PRELOADABLE_ALLOCATORS["jemalloc"])
    monkeypatch.setenv("TCMALLOC_RELEASE_RATE", "5")
    monkeypatch.setenv("KEPT", "1")
    glibc, tcmalloc = environment_for("glibc"), environment_for("tcmalloc")
    assert "LD_PRELOAD" not in glibc and "TCMALLOC_RELEASE_RATE" not in glibc and glibc["KEPT"] == "1"
    assert tcmalloc.items() >= preload_environment("tcmalloc").items() and tcmalloc["KEPT"] == "1"


def available(allocator: str) -> bool:
    """Whether the dynamic linker finds ``allocator``'s library (``libNAME.so.N`` -> ``NAME``)."""
    soname = PRELOADABLE_ALLOCATORS[allocator]
    return GLIBC and ctypes.util.find_library(soname.removeprefix("lib").split(".so")[0]) == soname


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc is the one replaced")
@pytest.mark.parametrize("allocator", ["glibc", *PRELOADABLE_ALLOCATORS])
def test_the_allocator_in_use_is_seen_and_only_glibc_takes_its_options(allocator):
    env = without_preload()
    if allocator != "glibc":
        if not available(allocator):
            pytest.skip(f"{PRELOADABLE_ALLOCATORS[allocator]} is not installed")
        env["LD_PRELOAD"] = PRELOADABLE_ALLOCATORS[allocator]
    out = subprocess.run([sys.executable, "-c", REPORT], check=True, capture_output=True, text=True, env=env)
    assert out.stdout.split() == [allocator, str(allocator == "glibc")]


# The malloc a child of path.sh's environment runs, whether glibc's options took, and what path.sh exported.
PATH_SH_REPORT = """
import json, os
from espnet_cs.host_memory import ALLOCATOR_SETTINGS, allocator_in_use, fix_mmap_threshold
names = ["LD_PRELOAD", *(name for settings in ALLOCATOR_SETTINGS.values() for name in settings)]
exported = {name: os.environ[name] for name in names if name in os.environ}
print(json.dumps([allocator_in_use(), fix_mmap_threshold(), exported]))
"""


def source_path_sh(malloc: str | None) -> subprocess.CompletedProcess:
    """``PATH_SH_REPORT`` run after sourcing the recipes' path.sh with ``ESPNET_CS_MALLOC=malloc``."""
    env = without_preload()
    if malloc is not None:
        env["ESPNET_CS_MALLOC"] = malloc
    script = f"source ./path.sh && {sys.executable} -c '{PATH_SH_REPORT}'"
    return subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, env=env)


@pytest.mark.parametrize("malloc, allocator", [(None, "tcmalloc"), ("tcmalloc", "tcmalloc"), ("jemalloc", "jemalloc")])
def test_path_sh_preloads_tcmalloc_unless_told_otherwise(malloc, allocator):
    if not available(allocator):
        pytest.skip(f"{PRELOADABLE_ALLOCATORS[allocator]} is not installed (tools/install.sh installs tcmalloc)")
    done = source_path_sh(malloc)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [allocator, False, preload_environment(allocator)]


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc is the one kept")
def test_path_sh_keeps_glibc_malloc_when_told():
    done = source_path_sh("glibc")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == ["glibc", True, {}]


def test_path_sh_refuses_an_unknown_malloc():
    done = source_path_sh("hoard")
    assert done.returncode == 1
    assert "ESPNET_CS_MALLOC must be tcmalloc, jemalloc or glibc, not 'hoard'" in done.stderr


def test_training_says_when_return_freed_memory_changes_nothing(monkeypatch, caplog):
    from espnet2.tasks.abs_task import AbsTask

    import espnet_cs.task
    from espnet_cs.task import CSASRTask

    monkeypatch.setattr(espnet_cs.task, "fix_mmap_threshold", lambda: False)
    monkeypatch.setattr(espnet_cs.task, "allocator_in_use", lambda: "tcmalloc")
    monkeypatch.setattr(AbsTask, "main_worker", classmethod(lambda cls, args: None))
    CSASRTask.main_worker(CSASRTask.get_parser().parse_args(["--return_freed_memory", "true"]))
    assert "--return_freed_memory true changes nothing: malloc is tcmalloc's, not glibc's" in caplog.text
