"""Copies of the mini_cs recipe dir for tests: scripts linked, data/, dump/ and exp/ of their own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "egs2" / "mini_cs" / "asr1"
TINY_DATA = "--num_train 2 --num_valid 2 --num_test 4 --nj 2"
DECODE_FILES = ("text", "token", "token_lang")


def recipe_copy(path: Path, data_from: Path | None = None) -> Path:
    """A recipe dir at ``path`` like egs2/mini_cs/asr1; with ``data_from``, sharing its data/ and dump/."""
    path.mkdir(parents=True, exist_ok=True)
    for name in ("run.sh", "asr.sh", "path.sh", "cmd.sh", "utils", "local", "conf"):
        (path / name).symlink_to(RECIPE / name)
    if data_from is not None:
        for name in ("data", "dump"):
            (path / name).symlink_to(data_from / name)
    return path


def run_recipe(recipe: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``./run.sh ARGS`` in ``recipe``, one torch thread per job (results do not then depend on how
    many jobs share the CPUs), with extra environment variables."""
    return subprocess.run(
        ["./run.sh", *args],
        cwd=recipe,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
    )


def prepared_recipe(path: Path, data_opts: str = TINY_DATA) -> Path:
    """A recipe copy with tiny mini_cs data through stage 2 (by default 2 train, 2 valid, 4 test utterances)."""
    recipe = recipe_copy(path)
    result = run_recipe(recipe, "--stop_stage", "2", "--local_data_opts", data_opts)
    assert result.returncode == 0, result.stderr[-3000:]
    return recipe


def zeroshot_args(whisper: Path, nj: int) -> list[str]:
    """Stage 3 with the zh_en task tokens only, on true-length audio, in batches of 2 (2 batches of the 4 test utterances)."""
    return [
        "--stage",
        "3",
        "--stop_stage",
        "3",
        "--nj",
        str(nj),
        "--whisper_model",
        str(whisper),
        "--zeroshot_task_tokens",
        "zh_en",
        "--pad_to_30s",
        "false",
        "--decode_batch_size",
        "2",
    ]
