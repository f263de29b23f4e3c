"""The Slurm launcher for real, on a single-node cluster made by tools/install_slurm.sh (needs root):
decoding in a job array equal to local decoding, a failed array task named with its log and rerun
alone, resources from conf/slurm.yaml, the environment and options, training under srun with
ESPnet's Slurm launcher, and the error when the controller does not answer."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from recipe_tools import DECODE_FILES, ROOT, prepared_recipe, recipe_copy, run_recipe, zeroshot_args

from espnet_cs.splitting import make_batches, read_lengths, split_batches

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[None]:
    """A running single-node cluster; the daemons this fixture started are stopped afterwards."""
    if os.geteuid() != 0:
        pytest.skip("the single-node Slurm cluster needs root (tools/install_slurm.sh)")
    result = subprocess.run([str(ROOT / "tools" / "install_slurm.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    started = [int(line.split()[2]) for line in result.stdout.splitlines() if line.startswith("started ")]
    yield
    for pid in reversed(started):  # slurmd, slurmctld, munged
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory) -> Path:
    return prepared_recipe(tmp_path_factory.mktemp("recipe"))


@pytest.fixture(scope="module")
def local_decodes(tiny_recipe, tiny_whisper_path, tmp_path_factory) -> Path:
    """Stage 3 in two local jobs: the reference."""
    recipe = recipe_copy(tmp_path_factory.mktemp("local"), data_from=tiny_recipe)
    result = run_recipe(recipe, *zeroshot_args(tiny_whisper_path, 2))
    assert result.returncode == 0, result.stderr[-3000:]
    return recipe / "exp"


def assert_same_as_local(exp: Path, local: Path) -> None:
    for system in ("zeroshot_zh_en", "zeroshot_zh_en_guard"):
        for name in DECODE_FILES:
            assert (exp / system / "decode_test" / name).read_bytes() == (
                local / system / "decode_test" / name
            ).read_bytes()


def shell(recipe: Path, command: str, **env: str) -> subprocess.CompletedProcess:
    """A command in the recipe's environment (path.sh sourced)."""
    return subprocess.run(
        ["bash", "-c", f". ./path.sh && {command}"],
        cwd=recipe,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )


def test_decoding_through_slurm_equals_local(slurm_cluster, tiny_recipe, tiny_whisper_path, local_decodes, tmp_path):
    recipe = recipe_copy(tmp_path / "slurm", data_from=tiny_recipe)
    result = run_recipe(recipe, *zeroshot_args(tiny_whisper_path, 2), "--cmd_backend", "slurm")
    assert result.returncode == 0, result.stderr[-3000:]
    log = (recipe / "exp/zeroshot_zh_en/decode_test/logdir/decode.2.log").read_text()
    assert ", Slurm job " in log and log.rstrip().endswith("exit code 0")
    assert_same_as_local(recipe / "exp", local_decodes)


def test_failed_array_task_is_named_and_rerun_alone(
    slurm_cluster, tiny_recipe, tiny_whisper_path, local_decodes, tmp_path
):
    recipe = recipe_copy(tmp_path / "slurm")
    shutil.copytree(tiny_recipe / "dump", recipe / "dump")  # its audio is broken below
    (recipe / "data").symlink_to(tiny_recipe / "data")
    splits = split_batches(make_batches(read_lengths(recipe / "dump/raw/test"), 2), 2)
    wav = recipe / f"dump/raw/test/data/{splits[1][0]}.wav"
    audio = wav.read_bytes()
    wav.write_bytes(b"RIFF, but not audio")

    result = run_recipe(recipe, *zeroshot_args(tiny_whisper_path, 2), "--cmd_backend", "slurm")
    logdir = recipe / "exp/zeroshot_zh_en/decode_test/logdir"
    assert result.returncode != 0
    assert (
        "job 2 (Slurm job " in result.stderr
        and f"failed, see {logdir.relative_to(recipe)}/decode.2.log" in result.stderr
    )
    assert "JOB=2:2" in result.stderr and "rerunning the stage redoes only the failed jobs" in result.stderr
    assert "job 1 (" not in result.stderr and (logdir / "output.1/text").exists()

    wav.write_bytes(audio)
    first = (logdir / "output.1/text").stat().st_mtime_ns
    result = run_recipe(recipe, *zeroshot_args(tiny_whisper_path, 2), "--cmd_backend", "slurm")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "complete already, skipped" in (logdir / "decode.1.log").read_text()
    assert "decoded 2 utterances" in (logdir / "decode.2.log").read_text()
    assert (logdir / "output.1/text").stat().st_mtime_ns == first
    assert_same_as_local(recipe / "exp", local_decodes)


def test_resources_from_conf_environment_and_options(slurm_cluster, tmp_path):
    recipe = recipe_copy(tmp_path / "recipe")
    # conf/slurm.yaml (decode): 1 CPU, 3G, 02:00:00; the environment sets the memory, an option the time
    result = shell(
        recipe,
        "utils/run_slurm.sh --class decode --time 00:07:00 JOB=1:2 logs/r.JOB.log "
        "bash -c 'echo task=JOB cpus=$SLURM_CPUS_PER_TASK mem=$SLURM_MEM_PER_NODE; "
        'scontrol show job $SLURM_JOB_ID | grep -o "TimeLimit=[^ ]*"\'',
        RUN_SLURM_MEM="1G",
    )
    assert result.returncode == 0, result.stderr
    for job in (1, 2):
        log = (recipe / f"logs/r.{job}.log").read_text()
        assert f"task={job} cpus=1 mem=1024" in log and "TimeLimit=00:07:00" in log


def test_training_under_srun_with_espnets_slurm_launcher(slurm_cluster, tiny_recipe, tiny_whisper_path, tmp_path):
    recipe = recipe_copy(tmp_path / "slurm", data_from=tiny_recipe)
    result = run_recipe(
        recipe,
        "--stage",
        "5",
        "--stop_stage",
        "5",
        "--cmd_backend",
        "slurm",
        "--method",
        "spt_enc",
        "--whisper_model",
        str(tiny_whisper_path),
        "--train_opts",
        "--max_epoch 1 --num_iters_per_epoch 1 --batch_size 2 --num_workers 0 "
        "--use_tensorboard false --use_matplotlib false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = (recipe / "exp/spt_enc/train.log").read_text()
    assert log.startswith("# srun --export=ALL python -m espnet_cs.bin.train") and "--dist_launcher slurm" in log
    assert log.rstrip().endswith("exit code 0") and (recipe / "exp/spt_enc/1epoch.pth").exists()


def test_unreachable_controller_is_a_clear_error(slurm_cluster, tmp_path):
    recipe = recipe_copy(tmp_path / "recipe")
    conf = tmp_path / "slurm.conf"
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    lines = Path("/etc/slurm/slurm.conf").read_text().splitlines()
    conf.write_text(
        "".join(f"SlurmctldPort={port}\n" if line.startswith("SlurmctldPort=") else f"{line}\n" for line in lines)
    )
    result = shell(recipe, "utils/run_slurm.sh --class decode JOB=1:2 logs/x.JOB.log true", SLURM_CONF=str(conf))
    assert result.returncode != 0
    host = socket.gethostname().split(".")[0]
    assert f"the Slurm controller {host} does not answer" in result.stderr and str(conf) in result.stderr
    assert not (recipe / "logs").exists()
