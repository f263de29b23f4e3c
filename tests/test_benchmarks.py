"""The benchmark harness: the methods it measures, run records, and RESULTS.md generated from them."""

from __future__ import annotations

import json

import pytest

from benchmarks import harness, results
from benchmarks.harness import Table, benchmark_methods, report, without_record


def run(date: str, machine: str = "cpu A", options: tuple[str, ...] = (), value: str = "1") -> dict:
    return {
        "benchmark": "train_step",
        "date": date,
        "machine": machine,
        "command": "python -m benchmarks.train_step " + " ".join(options),
        "options": list(options),
        "commit": None,
        "setup": "setup",
        "tables": [{"columns": ["method", "step (s)"], "rows": [["fft", value]], "title": ""}],
        "notes": [],
    }


def test_results_md_is_generated_from_the_records():
    """The committed benchmarks/RESULTS.md is what python -m benchmarks.results writes."""
    assert results.RESULTS.read_text(encoding="utf-8") == results.markdown(results.read_records())


def test_latest_run_per_benchmark_machine_and_options():
    runs = [run("2026-12-01", value="old"), run("2026-12-06", value="new"), run("2026-12-02", machine="cpu B")]
    runs.append(run("2026-11-30", options=("--methods", "fft")))
    newest = results.latest(runs)
    assert [(r["machine"], r["date"], r["options"]) for r in newest] == [
        ("cpu A", "2026-12-06", []),
        ("cpu B", "2026-12-02", []),
        ("cpu A", "2026-11-30", ["--methods", "fft"]),
    ]
    text = results.markdown(runs)
    assert "| fft | new |" in text and "| fft | old |" not in text


def test_report_writes_a_record_the_generator_reads(tmp_path, capsys):
    table = Table(["method", "step (s)"], [["fft", "2.04"]], title="malloc: glibc")
    path = report("train_step", "Whisper-base", [table], tmp_path, argv=["--steps", "1", "--record", str(tmp_path)])
    assert "| fft | 2.04 |" in capsys.readouterr().out
    (record,) = results.read_records(tmp_path)
    assert path.parent == tmp_path and record["options"] == ["--steps", "1"]
    assert record["command"] == "python -m benchmarks.train_step --steps 1"
    assert record["tables"] == [
        {"columns": ["method", "step (s)"], "rows": [["fft", "2.04"]], "title": "malloc: glibc"}
    ]
    assert "malloc: glibc\n| method | step (s) |\n|---|---|\n| fft | 2.04 |" in results.markdown([record])


def test_a_record_without_a_field_is_refused(tmp_path):
    broken = run("2026-12-06")
    del broken["machine"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=r"broken.json: not a benchmark record: fields missing \['machine'\]"):
        results.read_records(tmp_path)


def test_without_record_keeps_the_measuring_options():
    assert without_record(["--record", "--steps", "1"]) == ["--steps", "1"]
    assert without_record(["--steps", "1", "--record", "out"]) == ["--steps", "1"]
    assert without_record(["--record=out", "--batch", "2"]) == ["--batch", "2"]


def test_benchmarks_measure_every_one_phase_method():
    methods = benchmark_methods()
    assert "adapter_ag" in methods and "spt4asr" in methods and "fft" in methods
    assert "adapter_phase1" not in methods and "adapter_ag_phase2" not in methods
    assert harness.LID_HEADS.is_file()


def test_a_failed_child_names_its_command_and_error():
    with pytest.raises(
        RuntimeError, match=r"-m benchmarks\.nothing failed \(1\):\n.*No module named benchmarks\.nothing"
    ):
        harness.measure_in_child("benchmarks.nothing", [])
