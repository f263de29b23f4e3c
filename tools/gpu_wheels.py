"""Download the wheels the GPU tier needs on a bare CUDA machine, in carry-sized parts.

The target has Python (3.12 by default) and torch/torchaudio, no network. This script, run here:

1. measures which distributions the GPU tier imports: it runs ``tests/test_dtypes.py`` and
   ``tests/test_gpu.py`` (the CPU halves run here; the CUDA ones skip) and a one-step CPU run of
   ``benchmarks/gpu.py`` in this process and records the distributions of every imported module;
2. leaves out torch, torchaudio and everything they require (the target's own), espnet-cs itself
   (the checkout travels), the embedded Whisper-base weights (139 MiB: the benchmark uses random
   weights without them) and, with ``--have``, every distribution the target already has;
3. downloads the binary wheel of the version installed here of each of the others for the target's
   Python (``pip download --only-binary``); a distribution with no wheel for it is built here from
   its source distribution, which must give a pure-Python wheel;
4. packs the wheels into parts of at most ``--max_mib`` each (first fit, largest first):
   ``<out>/part1``, ``part2``, ...; each part holds ``manifest.txt``, every part's wheel listed.

On the target, ``tools/gpu_install.sh`` installs the parts present, one call per part where more
than one carry is needed, and says which are still missing (``docs/gpu.md``).

    tools/venv/bin/python tools/gpu_wheels.py [--python_version 3.12] [--have pip_list.txt] [--max_mib 60]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

from espnet_cs.backbone.loading import (
    EMBEDDED_DISTRIBUTIONS,  # 139 MiB; without them the benchmark uses a random Whisper-base
)

ROOT = Path(__file__).resolve().parents[1]
TIER_TESTS = ("tests/test_dtypes.py", "tests/test_gpu.py")
BENCHMARK_SMOKE = (
    "--device cpu --sizes base --methods lora --batch 1 --seconds 1 --steps 1 --warmup 0 --decode_tokens 2".split()
)
TARGET_OWN = ("torch", "torchaudio")  # preinstalled on the target, with what they require
SELF = "espnet-cs"  # the checkout travels; PYTHONPATH holds it
PLATFORMS = (
    "manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64".split()
)
MIB = 2**20


def canonical(name: str) -> str:
    """The PEP 503 normalized name of a distribution: ``Jinja2`` -> ``jinja2``, ``jaraco.functools`` -> ``jaraco-functools``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_closure(roots: tuple[str, ...]) -> set[str]:
    """The installed distributions ``roots`` require, recursively, themselves included (extras not taken)."""
    environment = default_environment()
    environment["extra"] = ""
    seen: set[str] = set()
    pending = [canonical(name) for name in roots]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                pending.append(canonical(requirement.name))
    return seen


def imported_distributions() -> set[str]:
    """The distributions of the modules imported so far in this process."""
    owners = metadata.packages_distributions()
    tops = {name.split(".")[0] for name in list(sys.modules)}
    return {canonical(dist) for top in tops for dist in owners.get(top, ())}


def measure_tier_imports() -> set[str]:
    """Run the GPU tier's tests and a one-step benchmark here; the distributions they imported."""
    import pytest

    status = pytest.main(["-q", "-p", "no:cacheprovider", *(str(ROOT / path) for path in TIER_TESTS)])
    if status != 0:
        raise SystemExit(f"gpu_wheels: the GPU tier's CPU tests failed (pytest exit {status}); fix them first")
    sys.path.insert(0, str(ROOT))
    from benchmarks import gpu as benchmark

    benchmark.main(BENCHMARK_SMOKE)
    return imported_distributions()


def read_have(path: Path | None) -> set[str]:
    """Distribution names in a ``pip list`` / ``pip freeze`` output (or one name per line)."""
    if path is None:
        return set()
    names = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "Package", "---")):
            continue
        names.add(canonical(re.split(r"[\s=<>~!]", line, maxsplit=1)[0]))
    return names


def to_carry(imported: set[str], have: set[str]) -> dict[str, str]:
    """``{name: version}`` of the imported distributions the target lacks, at the versions installed here."""
    leave_out = requirement_closure(TARGET_OWN) | have | {SELF, *EMBEDDED_DISTRIBUTIONS}
    return {name: metadata.version(name) for name in sorted(imported - leave_out)}


def target_tags(python_version: str) -> set[Tag]:
    """The wheel tags a CPython of ``python_version`` on x86-64 Linux installs."""
    version = tuple(int(part) for part in python_version.split("."))
    return set(cpython_tags(version, platforms=PLATFORMS)) | set(compatible_tags(version, platforms=PLATFORMS))


def download(name: str, version: str, python_version: str, dest: Path) -> Path:
    """The wheel of ``name==version`` for the target in ``dest``: a binary wheel, else one built from its sdist."""
    spec = f"{name}=={version}"
    tag = python_version.replace(".", "")
    before = set(dest.iterdir())
    binary = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(dest)]
    binary += ["--python-version", python_version, "--implementation", "cp", "--abi", f"cp{tag}", "--abi", "abi3"]
    binary += ["--abi", "none", *(arg for platform in PLATFORMS for arg in ("--platform", platform)), spec]
    if subprocess.run(binary, capture_output=True, text=True).returncode != 0:
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-binary", name, "-w", str(dest), spec],
            capture_output=True,
            text=True,
        )
        if built.returncode != 0:
            raise SystemExit(
                f"gpu_wheels: {spec}: no wheel for Python {python_version} and no buildable sdist:\n{built.stderr}"
            )
    (wheel,) = set(dest.iterdir()) - before
    if wheel.suffix != ".whl":
        raise SystemExit(f"gpu_wheels: {spec}: got {wheel.name}, not a wheel")
    if not parse_wheel_filename(wheel.name)[3] & target_tags(python_version):
        raise SystemExit(f"gpu_wheels: {spec}: {wheel.name} is a binary wheel for another Python than {python_version}")
    return wheel


def pack(sizes: dict[str, int], max_bytes: int) -> list[list[str]]:
    """Names grouped into parts of at most ``max_bytes`` in all: first fit, largest first."""
    parts: list[list[str]] = []
    room: list[int] = []
    for name in sorted(sizes, key=lambda name: (-sizes[name], name)):
        if sizes[name] > max_bytes:
            raise SystemExit(
                f"gpu_wheels: {name} is {sizes[name] / MIB:.1f} MiB, more than a part's {max_bytes / MIB:.1f} MiB"
            )
        fits = next((i for i, free in enumerate(room) if free >= sizes[name]), None)
        if fits is None:
            parts.append([])
            room.append(max_bytes)
            fits = len(parts) - 1
        parts[fits].append(name)
        room[fits] -= sizes[name]
    return parts


def write_parts(wheels: list[Path], max_mib: float, out: Path) -> list[list[Path]]:
    """Move ``wheels`` into ``out/part1...`` of at most ``max_mib`` MiB each, each with the manifest of all."""
    by_name = {wheel.name: wheel for wheel in wheels}
    parts = pack({name: wheel.stat().st_size for name, wheel in by_name.items()}, int(max_mib * MIB))
    manifest = "".join(f"part{i} {name}\n" for i, names in enumerate(parts, 1) for name in sorted(names))
    if out.exists():
        shutil.rmtree(out)
    placed = []
    for i, names in enumerate(parts, 1):
        part = out / f"part{i}"
        part.mkdir(parents=True)
        (part / "manifest.txt").write_text(manifest)
        placed.append([Path(shutil.move(by_name[name], part / name)) for name in sorted(names)])
    return placed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python_version", default="3.12", help="the target's Python")
    parser.add_argument("--have", type=Path, help="the target's `pip list`: what it has is not carried")
    parser.add_argument(
        "--max_mib", type=float, default=60.0, help="size of a part (the carry is 64 MiB with the checkout)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "tools" / "gpu_wheels")
    args = parser.parse_args(argv)

    carry = to_carry(measure_tier_imports(), read_have(args.have))
    with tempfile.TemporaryDirectory() as tmp:
        wheels = [download(name, version, args.python_version, Path(tmp)) for name, version in carry.items()]
        parts = write_parts(wheels, args.max_mib, args.out)
    print(
        f"gpu_wheels: {len(carry)} distributions for Python {args.python_version} in {len(parts)} part(s) under {args.out}:"
    )
    for i, part in enumerate(parts, 1):
        size = sum(wheel.stat().st_size for wheel in part) / MIB
        print(f"  part{i}: {len(part)} wheels, {size:.1f} MiB: {' '.join(wheel.name.split('-')[0] for wheel in part)}")


if __name__ == "__main__":
    main()
