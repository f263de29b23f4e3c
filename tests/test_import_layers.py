"""The package's import contract (``[tool.importlinter]`` in pyproject.toml): no upward import, no cycle."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def lint_imports() -> str | None:
    """The ``lint-imports`` of the running Python's environment, else the one on PATH."""
    beside = Path(sys.executable).with_name("lint-imports")
    return str(beside) if beside.is_file() else shutil.which("lint-imports")


def test_every_module_imports_only_from_the_layers_below_it():
    tool = lint_imports()
    if tool is None:
        pytest.skip("lint-imports missing: pip install import-linter (tools/requirements.txt) to check the layers")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([tool, "--no-cache"], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
