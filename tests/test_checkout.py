"""A recipe runs the espnet_cs of its own checkout, whichever clone the shared environment was installed from."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clone(to: Path) -> Path:
    """A copy of this checkout's files (tracked and new ones, as they are now) at ``to``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_symlink() or source.is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name, follow_symlinks=False)
    return to


def imported_espnet_cs(checkout: Path) -> subprocess.CompletedProcess:
    """Which espnet_cs the python of a recipe of ``checkout`` imports after its path.sh, with the
    environment running these tests as ESPNET_CS_VENV (one environment for every clone) and no
    PYTHONPATH of the caller's."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    env["ESPNET_CS_VENV"] = sys.prefix
    return subprocess.run(
        ["bash", "-c", ". ./path.sh && python -c 'import espnet_cs; print(espnet_cs.__file__)'"],
        cwd=checkout / "egs2" / "mini_cs" / "asr1",
        env=env,
        capture_output=True,
        text=True,
    )


def test_each_clone_runs_its_own_espnet_cs(tmp_path: Path) -> None:
    for checkout in (ROOT, clone(tmp_path / "clone")):
        result = imported_espnet_cs(checkout)
        assert result.returncode == 0, result.stderr
        assert Path(result.stdout.strip()).resolve() == (checkout / "espnet_cs" / "__init__.py").resolve()


def test_an_environment_importing_another_checkout_is_refused(tmp_path: Path) -> None:
    checkout = clone(tmp_path / "clone")
    (checkout / "espnet_cs" / "__init__.py").unlink()  # no longer a package: the environment's one wins
    result = imported_espnet_cs(checkout)
    assert result.returncode != 0
    assert "imports espnet_cs from " in result.stderr
    assert f"not from this checkout's {checkout}/espnet_cs" in result.stderr
