"""Worker processes end with their parent; a killed worker is one line naming the work and its signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from espnet_cs.workers import WorkerDied, describe_exit, map_in_processes


def square_or_die(item: int) -> int:
    if item == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
    return item * item


def test_results_in_order() -> None:
    assert map_in_processes(square_or_die, [0, 1, 2, 4], 2, "squaring") == [0, 1, 4, 16]


def test_killed_worker_is_named_with_its_signal() -> None:
    with pytest.raises(WorkerDied) as error:
        map_in_processes(square_or_die, list(range(8)), 2, "squaring numbers")
    assert str(error.value).startswith("squaring numbers: worker ")
    assert str(error.value).endswith(
        " was killed by SIGKILL (most often the out-of-memory killer: see dmesg, or use fewer jobs)"
    )
    assert describe_exit(-signal.SIGTERM) == "was killed by SIGTERM" and describe_exit(3) == "exited with status 3"


PARENT = """
import os, sys, time
from pathlib import Path
from espnet_cs.workers import map_in_processes

def wait(item):
    Path(sys.argv[1], str(os.getpid())).touch()
    time.sleep(120)

map_in_processes(wait, [0, 1], 2, "waiting")
"""


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (dead, waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_end_when_their_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)])
    deadline = time.monotonic() + 60
    while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [int(path.name) for path in tmp_path.iterdir()]
    assert len(workers) == 2
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while any(map(running, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [pid for pid in workers if running(pid)]
    for pid in alive:  # left by the behaviour under test: end them before failing
        os.kill(pid, signal.SIGKILL)
    assert alive == []


RUN_LOCAL = Path(__file__).resolve().parents[1] / "egs2" / "TEMPLATE" / "asr1" / "utils" / "run_local.sh"


def test_killed_split_job_is_named_with_its_signal(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(RUN_LOCAL), "JOB=1:2", str(tmp_path / "job.JOB.log"), "sh", "-c", "[ JOB = 1 ] || kill -9 $$"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert (
        f"job 2 was killed by SIGKILL (most often the out-of-memory killer: see dmesg, or use fewer jobs), see {tmp_path / 'job.2.log'}:"
        in run.stderr
    )
    assert "job 1" not in run.stderr


def test_split_jobs_end_when_their_caller_is_killed(tmp_path: Path) -> None:
    job = f"echo \\$\\$ > {tmp_path}/JOB.pid; exec sleep 120"  # the job shell's own pid, not the caller's
    caller = subprocess.Popen(
        ["bash", "-c", f'"{RUN_LOCAL}" JOB=1:2 "{tmp_path}/job.JOB.log" sh -c "{job}"; echo done'],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("*.pid"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # the pid files are written
    jobs = [int(path.read_text()) for path in tmp_path.glob("*.pid")]
    assert len(jobs) == 2
    caller.kill()  # asr.sh killed, as by kill -9 or the out-of-memory killer
    caller.wait()
    deadline = time.monotonic() + 10
    while any(map(running, jobs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in jobs if running(pid)]
    for pid in alive:  # left by the behaviour under test: end them before failing
        os.kill(pid, signal.SIGKILL)
    assert alive == []
