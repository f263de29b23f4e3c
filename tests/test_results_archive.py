"""The results archive: training summaries, copies that replace and keep, the same-audio check, the report made from it."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from espnet_cs import results_archive
from espnet_cs.bin import report
from espnet_cs.report.rows import collect
from espnet_cs.results_archive import archive, training_summary
from espnet_cs.scoring import score
from espnet_cs.splitting import file_sha256

REFS = {"u1": "我们开 meeting 吧", "u2": "他们开 party 吧"}


def reporter_state(
    seconds: list[tuple[float, float]], resumed_after: int = 0, losses: list[tuple[float, float]] | None = None
) -> dict:
    """ESPnet's ``Reporter`` state after epochs of (train, valid) seconds and losses (1.0 if not given);
    restored from its state after epoch ``resumed_after`` (as ``--resume true`` does after a kill) if that is not 0."""
    from espnet2.train.reporter import Reporter

    reporter = Reporter()
    for epoch, phases in enumerate(seconds, start=1):
        if epoch == resumed_after + 1 and resumed_after:
            state, reporter = reporter.state_dict(), Reporter()
            reporter.load_state_dict(state)
        reporter.set_epoch(epoch)
        for phase, took, loss in zip(("train", "valid"), phases, losses[epoch - 1] if losses else (1.0, 1.0)):
            sub = reporter.start_epoch(phase)
            sub.register({"loss": loss})
            sub.next()
            sub.start_time -= took  # as if the phase had taken that long
            reporter.finish_epoch(sub)
    return reporter.state_dict()


def trained_run(
    exp: Path,
    seconds: list[tuple[float, float]],
    resumed_after: int = 0,
    init: list | None = None,
    losses: list[tuple[float, float]] | None = None,
    lr: float | None = None,
) -> None:
    exp.mkdir(parents=True)
    config = {"whisper_model": "whisper-base", "init_param": init or [], "optim_conf": {"lr": lr} if lr else {}}
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    torch.save({"reporter": reporter_state(seconds, resumed_after, losses)}, exp / "checkpoint.pth")


@pytest.fixture
def counted(monkeypatch):
    """Every config counts 1000 trainable parameters (the counting itself: tests/test_sizes.py)."""
    monkeypatch.setattr(results_archive, "count_trainable", lambda args, whisper_model: (1000, None))


def timing(summary: dict) -> dict:
    """The size, epochs and time of a training summary (its curves: test_curves_...)."""
    return {key: summary[key] for key in ("trainable", "epochs", "seconds")}


def test_training_time_is_every_finished_epoch_of_every_stage(tmp_path, monkeypatch, counted) -> None:
    monkeypatch.chdir(tmp_path)
    trained_run(Path("exp/s1"), [(40, 10)] * 3)
    trained_run(Path("exp/s1+s2"), [(35, 7.5)] * 4, init=["exp/s1/valid.loss.ave.pth"])
    trained_run(Path("exp/resumed"), [(40, 10)] * 4, resumed_after=2)  # killed after epoch 2, resumed
    assert timing(training_summary(Path("exp/s1"))) == {"trainable": 1000, "epochs": 3, "seconds": 150}
    assert timing(training_summary(Path("exp/s1+s2"))) == {"trainable": 1000, "epochs": "3+4", "seconds": 320}
    assert timing(training_summary(Path("exp/resumed"))) == {"trainable": 1000, "epochs": 4, "seconds": 200}
    Path("exp/resumed/checkpoint.pth").unlink()  # no checkpoint: epochs, time and curves unknown
    assert training_summary(Path("exp/resumed")) == {
        "trainable": 1000,
        "epochs": None,
        "seconds": None,
        "learning_rate": None,
        "curves": [],
    }
    assert training_summary(Path("exp/zeroshot_zh_en")) == {}


@pytest.mark.filterwarnings("ignore:Mean of empty slice")  # ESPnet's Reporter averaging the NaN loss
def test_curves_of_every_phase_with_the_plots_in_the_archive_and_the_report(tmp_path, monkeypatch, counted) -> None:
    monkeypatch.chdir(tmp_path)
    trained_run(Path("exp/s1"), [(40, 10)] * 2, losses=[(30.0, 20.0), (20.0, float("nan"))], lr=3e-3)
    trained_run(Path("exp/s1+s2"), [(35, 7.5)] * 3, init=["exp/s1/valid.loss.ave.pth"], losses=[(9.0, 8.0)] * 3)
    summary = training_summary(Path("exp/s1+s2"))
    assert summary["curves"] == [
        {"run": "s1", "train_loss": [30.0, 20.0], "valid_loss": [20.0, None]},  # NaN: not recorded
        {"run": "s1+s2", "train_loss": [9.0] * 3, "valid_loss": [8.0] * 3},
    ]
    assert training_summary(Path("exp/s1"))["learning_rate"] == 3e-3 and summary["learning_rate"] is None
    for run in ("s1", "s1+s2"):
        (Path("exp") / run / "images").mkdir()
        (Path("exp") / run / "images/loss.png").write_bytes(run.encode())
    decoded(Path("exp"), "s1+s2", "test", REFS)
    report.main(["--exp_dir", "exp", "--archive", "results", "--out", "RESULTS.md"])
    assert Path("results/s1/images/loss.png").read_bytes() == b"s1"  # the first phase's plot too
    assert Path("results/s1+s2/images/loss.png").read_bytes() == b"s1+s2"
    assert not Path("results/s1/images/acc.png").exists()
    assert (
        "| `s1+s2` | — | 2+3 | phase 1: 20.00, —; phase 2: 8.00, 8.00, 8.00 | 1 | +0.0% | "
        "[s1 loss](results/s1/images/loss.png), [s1+s2 loss](results/s1+s2/images/loss.png) |"
    ) in Path("RESULTS.md").read_text()


def decoded(exp: Path, system: str, test_set: str, hyps: dict[str, str], audio: str = "a" * 64, **info) -> Path:
    """A scored decode dir ``exp/<system>/decode_<test_set>``, as stages 8 and 9 leave it."""
    decode_dir = exp / system / f"decode_{test_set}"
    decode_dir.mkdir(parents=True)
    (decode_dir / "scores.json").write_text(score(REFS, hyps).to_json())
    info = {"data_dir": f"dump/raw/{test_set}", "audio_sha256": audio, "real_time_factor": 0.01, **info}
    info = {"task_tokens": "zh_en", "guard": False, "pad_to_30s": False, **info}
    (decode_dir / "decode_info.json").write_text(json.dumps(info))
    (decode_dir / "text").write_text("".join(f"{u} {h}\n" for u, h in hyps.items()))
    return decode_dir


def test_archive_copies_replaces_and_keeps(tmp_path, monkeypatch, counted) -> None:
    monkeypatch.chdir(tmp_path)
    exp, kept = Path("exp"), Path("results")
    trained_run(exp / "dpt", [(40, 10)])
    decoded(exp, "dpt", "test", {"u1": "我们开 meetings 吧", "u2": "他们开 party 吧"})
    decoded(exp, "dpt_guard", "test", REFS, guard=True, derived_from="exp/dpt/decode_test")
    decoded(exp, "zeroshot_zh_en", "test", REFS)
    (exp / "lid_heads").mkdir()
    (exp / "lid_heads/lid_heads.json").write_text("{}")
    copied = archive(exp, kept)
    assert [d.parent.name for d in copied] == ["dpt", "dpt_guard", "zeroshot_zh_en"]
    assert sorted(p.name for p in (kept / "dpt/decode_test").iterdir()) == ["decode_info.json", "scores.json"]
    dpt = training_summary(exp / "dpt")
    assert timing(dpt) == {"trainable": 1000, "epochs": 1, "seconds": 50}
    assert json.loads((kept / "dpt/training.json").read_text()) == dpt
    assert json.loads((kept / "dpt_guard/training.json").read_text()) == dpt  # the training it was cut from
    assert json.loads((kept / "zeroshot_zh_en/training.json").read_text()) == {}
    assert (kept / "lid_heads/lid_heads.json").exists()

    # a new clone: exp holds only the run made in it; the archive keeps the others and the report shows all
    exp2 = Path("exp2")
    trained_run(exp2 / "lpt", [(20, 5)])
    decoded(exp2, "lpt", "test", REFS)
    trained_run(exp2 / "dpt", [(30, 10)])  # retrained: replaces the archived copy
    decoded(exp2, "dpt", "test", REFS)
    archive(exp2, kept)
    tables = collect(kept)
    assert [row.system for row in tables["test"]] == ["zeroshot_zh_en", "dpt", "dpt_guard", "lpt"]  # zero-shot first
    rows = {row.system: row for row in tables["test"]}
    assert rows["dpt"].scores["overall_mer"] == 0.0
    assert timing(rows["dpt"].training) == {"trainable": 1000, "epochs": 1, "seconds": 40}
    assert rows["dpt_guard"].training == dpt  # kept from the first clone
    assert timing(rows["lpt"].training) == {"trainable": 1000, "epochs": 1, "seconds": 25}


def test_a_decode_variant_reports_the_training_of_its_model(tmp_path, monkeypatch, counted) -> None:
    monkeypatch.chdir(tmp_path)
    exp = Path("exp")
    trained_run(exp / "dpt", [(40, 10)])
    variant = {"decode_variant": "beam5", "beam_size": 5, "model_file": "exp/dpt/valid.loss.ave.pth"}
    decoded(exp, "dpt_beam5", "test", REFS, **variant)
    decoded(exp, "dpt_beam5_guard", "test", REFS, **variant, guard=True, derived_from="exp/dpt_beam5/decode_test")
    decoded(exp, "zeroshot_zh_en_beam5", "test", REFS, decode_variant="beam5", beam_size=5, model_file=None)
    archive(exp, Path("results"))
    dpt = training_summary(exp / "dpt")
    for system in ("dpt_beam5", "dpt_beam5_guard"):
        assert json.loads(Path(f"results/{system}/training.json").read_text()) == dpt
    assert json.loads(Path("results/zeroshot_zh_en_beam5/training.json").read_text()) == {}
    rows = collect(Path("results"))["test"]
    assert [(row.system, row.base_system, row.trained) for row in rows] == [
        ("zeroshot_zh_en_beam5", "zeroshot_zh_en", False),
        ("dpt_beam5", "dpt", True),
        ("dpt_beam5_guard", "dpt", True),
    ]


def test_archive_refuses_other_audio_and_writes_nothing(tmp_path, monkeypatch, counted) -> None:
    monkeypatch.chdir(tmp_path)
    decoded(Path("exp"), "dpt", "test", REFS)
    archive(Path("exp"), Path("results"))
    before = sorted(str(p) for p in Path("results").rglob("*"))
    decoded(Path("exp2"), "lpt", "test", REFS, audio="b" * 64)  # the data regenerated differently
    with pytest.raises(
        ValueError,
        match=r"exp2/lpt/decode_test was decoded from other audio than the archived "
        r"results/dpt/decode_test .*git rm -r results/\*/decode_test",
    ):
        archive(Path("exp2"), Path("results"))
    assert sorted(str(p) for p in Path("results").rglob("*")) == before
    decoded(Path("exp3"), "dpt", "test", REFS, audio="b" * 64)  # a row rescored on the new audio replaces its copy
    decoded(Path("exp3"), "lpt", "test", REFS, audio="c" * 64)
    with pytest.raises(ValueError, match="were decoded from different audio"):
        archive(Path("exp3"), Path("results"))


def test_report_from_the_archive(tmp_path, monkeypatch, counted) -> None:
    monkeypatch.chdir(tmp_path)
    decoded(Path("exp"), "zeroshot_zh_en", "test", {"u1": "我们开 meetings 吧", "u2": "他们开 party 吧"})
    archive(Path("exp"), Path("results"))
    trained_run(Path("exp2/lora"), [(40, 10)])
    decoded(Path("exp2"), "lora", "test", REFS)
    report.main(["--exp_dir", "exp2", "--archive", "results", "--out", "RESULTS.md"])
    text = Path("RESULTS.md").read_text()
    assert "| `zeroshot_zh_en` | task tokens `zh_en`, no guard, true length | 0 | — | — | 2 | 10.0" in text
    assert "| `lora` | task tokens `zh_en`, no guard, true length | 0.001M | 1 | 0.8 min | 2 | 0.0" in text
    assert (tmp_path / "results/lora/training.json").exists()
    decoded(Path("exp3"), "lpt", "test", REFS, audio="b" * 64)
    with pytest.raises(SystemExit, match="report.py: exp3/lpt/decode_test was decoded from other audio"):
        report.main(["--exp_dir", "exp3", "--archive", "results", "--out", "RESULTS.md"])


def test_report_names_a_truncated_checkpoint_and_writes_nothing(tmp_path, monkeypatch, counted) -> None:
    monkeypatch.chdir(tmp_path)
    trained_run(Path("exp/lora"), [(40, 10)])
    decoded(Path("exp"), "lora", "test", REFS)
    checkpoint = Path("exp/lora/checkpoint.pth")
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # a run killed while saving
    for argv in (["--exp_dir", "exp", "--out", "RESULTS.md"], ["--exp_dir", "exp", "--archive", "results"]):
        with pytest.raises(SystemExit, match="report.py: exp/lora/checkpoint.pth cannot be read"):
            report.main(argv)
    assert not Path("RESULTS.md").exists() and not Path("results/lora").exists()


def test_attention_keeps_the_archived_systems_measured_alike(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    measured = {"lid_heads": "exp/lid_heads/lid_heads.json", "selection": "top", "fraction": 0.6, "heads": [[1, 2]]}

    def attention(exp: str, **systems: float) -> None:
        path = Path(exp, "attention/valid/attention.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        shares = {name: {"own_language": share, "pairs": 10} for name, share in systems.items()}
        path.write_text(json.dumps({**measured, "utt": "u1", "systems": shares}))

    attention("exp", backbone=0.5, adapter=0.6)
    archive(Path("exp"), Path("results"))
    attention("exp2", backbone=0.5, adapter_ag=0.9)  # a later clone measures another system on the same heads
    archive(Path("exp2"), Path("results"))
    kept = json.loads(Path("results/attention/valid/attention.json").read_text())
    assert {name: v["own_language"] for name, v in kept["systems"].items()} == {
        "backbone": 0.5,
        "adapter": 0.6,
        "adapter_ag": 0.9,
    }
    measured["heads"] = [[1, 2], [3, 4]]  # other heads (stage 4 rerun elsewhere): the old shares go
    attention("exp3", backbone=0.4)
    archive(Path("exp3"), Path("results"))
    kept = json.loads(Path("results/attention/valid/attention.json").read_text())
    assert list(kept["systems"]) == ["backbone"] and kept["heads"] == [[1, 2], [3, 4]]


def test_archive_keeps_the_conditions_of_the_decoded_audio_and_the_report_breaks_mer_down(
    tmp_path, monkeypatch, counted
) -> None:
    monkeypatch.chdir(tmp_path)
    stage2, data = Path("dump/raw/test"), Path("data/test")
    stage2.mkdir(parents=True)
    (stage2 / "utt2sha256").write_text("u1 a1\nu2 b2\n")
    audio = file_sha256(stage2 / "utt2sha256")
    data.mkdir(parents=True)
    conditions = (
        "u1 speed=1.0 rt60=dry noise=none level=-20.0\nu2 speed=0.9 rt60=0.52 noise=babble/3 snr=9.1 level=-30.0\n"
    )
    (data / "utt2condition").write_text(conditions)
    decoded(Path("exp"), "zeroshot_zh_en", "test", {"u1": "我们开 meetings 吧", "u2": "他们开 party 吧"}, audio=audio)
    decoded(Path("exp"), "zeroshot_zh_en", "forget_en", REFS, audio=audio)  # no data/forget_en/utt2condition
    report.main(["--exp_dir", "exp", "--archive", "results", "--out", "RESULTS.md"])
    assert Path("results/data/test/utt2condition").read_text() == conditions
    assert Path("results/data/test/audio_sha256").read_text() == audio + "\n"
    assert not Path("results/data/forget_en").exists()
    text = Path("RESULTS.md").read_text()
    assert "## By acoustic condition" in text
    header = "| set | system | clean | reverberant | noisy | reverberant+noisy |"
    # u1 (clean): 1 substitution of 5 units; u2 (reverberant+noisy): none
    assert (
        f"{header}\n|---|---|---|---|---|---|\n| test | `zeroshot_zh_en` | 20.0 [20.0, 20.0] (1) | — | — | 0.0 [0.0, 0.0] (1) |\n"
        in text
    )

    # rows of other audio than the archived conditions describe get no row in the section
    decoded(Path("exp2"), "lora", "test", REFS, audio="b" * 64)
    shutil.rmtree("results/zeroshot_zh_en/decode_test")
    report.main(["--exp_dir", "exp2", "--archive", "results", "--out", "RESULTS.md"])
    assert "## By acoustic condition" not in Path("RESULTS.md").read_text()

    # conditions of the decoded audio, but of other utterances, and malformed conditions: refused, nothing written
    shutil.rmtree("results")
    (data / "utt2condition").write_text(conditions.splitlines()[0] + "\n")
    with pytest.raises(SystemExit, match=f"{data}/utt2condition describes 1 utterances, 1 of the 2 that exp/"):
        report.main(["--exp_dir", "exp", "--archive", "results", "--out", "RESULTS.md"])
    (data / "utt2condition").write_text(conditions.replace("rt60=0.52", "rt60"))
    with pytest.raises(SystemExit, match=f"{data}/utt2condition:2: utterance u2: field 'rt60' is not key=value"):
        report.main(["--exp_dir", "exp", "--archive", "results", "--out", "RESULTS.md"])
    assert not Path("results").exists()

    # stage 2 reformatted other audio since the decode: the conditions no longer describe it, and are not archived
    (data / "utt2condition").write_text(conditions)
    (stage2 / "utt2sha256").write_text("u1 a1\nu2 new\n")
    report.main(["--exp_dir", "exp", "--archive", "results", "--out", "RESULTS.md"])
    assert not Path("results/data").exists()
