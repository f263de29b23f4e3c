"""The mini_cs recipe end to end (stages 1-3, 9-10) and its errors, in a copy of the recipe dir."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "egs2" / "mini_cs" / "asr1"
TINY_DATA = "--num_train 2 --num_valid 2 --num_test 4 --nj 2"


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    """A recipe dir like egs2/mini_cs/asr1 whose data/, dump/ and exp/ live in tmp_path."""
    for name in ("run.sh", "asr.sh", "path.sh", "cmd.sh", "utils", "local", "conf"):
        (tmp_path / name).symlink_to(RECIPE / name)
    return tmp_path


def run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["./run.sh", *args], cwd=recipe, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"}
    )


@pytest.mark.integration
def test_demo_stages_write_scores_and_results(recipe):
    result = run(recipe, "--local_data_opts", TINY_DATA, "--decode_batch_size", "4")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (recipe / "exp/lid_heads/lid_heads.json").exists() and (recipe / "exp/lid_heads/heads.png").exists()
    assert (recipe / "exp/spt4asr/valid.loss.ave.pth").exists()  # the demo trains SPT4ASR
    assert (recipe / "exp/spt4asr/packed.zip").stat().st_size > 0  # and packs it
    for system in (
        "zeroshot_single",
        "zeroshot_cs",
        "zeroshot_single_guard",
        "zeroshot_cs_guard",
        "spt4asr",
        "spt4asr_guard",
    ):
        scores = json.loads((recipe / f"exp/{system}/decode_test/scores.json").read_text())
        assert scores["utterances"] == 4
        assert {"overall_mer", "cs_mer", "zh_cer", "en_wer"} <= scores.keys()
        assert (recipe / f"exp/{system}/decode_test/alignments.txt").exists()
    results = (recipe / "RESULTS.md").read_text()
    assert "| `zeroshot_cs` | LID prompt `cs`, no guard, 30-s padding | 0 | — | — | 4 |" in results
    assert "| `spt4asr` | LID prompt `cs`, no guard, true length | 2.055M | 3 |" in results
    assert "## LID heads" in results
    # stage 10 measures by default every trained model with the cs LID prompt (spt4asr: language prompts too)
    attention = json.loads((recipe / "exp/attention/test/attention.json").read_text())
    assert list(attention["systems"]) == ["backbone", "spt4asr"] and "## Attention of the guided heads" in results
    result = run(recipe, "--stage", "5", "--stop_stage", "10", "--method", "adapter", "--train_opts", "--max_epoch 1")
    assert result.returncode == 0, result.stderr[-3000:]
    attention = json.loads((recipe / "exp/attention/test/attention.json").read_text())
    assert list(attention["systems"]) == ["backbone", "adapter", "spt4asr"]  # asr.sh names no method
    assert (attention["selection"], attention["share"], attention["lid_heads"]) == (
        "top",
        0.6,
        "exp/lid_heads/lid_heads.json",
    )
    assert (recipe / "exp/attention/test/attention.png").exists()
    assert "## Attention of the guided heads on test" in (recipe / "RESULTS.md").read_text()
    # rerunning stage 3 skips finished decodes
    again = run(recipe, "--stage", "3", "--stop_stage", "3")
    assert again.returncode == 0 and "done already, skipped" in again.stderr


def test_missing_method_and_unknown_option_are_errors(recipe):
    result = run(recipe, "--stage", "11", "--stop_stage", "11", "--method", "")
    assert result.returncode != 0 and "stage 11 needs --method" in result.stderr
    result = run(recipe, "--stage", "6", "--stop_stage", "6")
    assert result.returncode != 0 and "stage 6 needs --stage2_method" in result.stderr
    result = run(recipe, "--stage", "5", "--stop_stage", "5", "--method", "")
    assert result.returncode != 0 and "stage 5 needs --method" in result.stderr
    result = run(recipe, "--stage", "5", "--stop_stage", "5", "--method", "nosuch")
    assert result.returncode != 0 and "unknown method 'nosuch'" in result.stderr and "spt4asr" in result.stderr
    result = run(recipe, "--stage", "10", "--stop_stage", "10", "--attention_systems", "nosuch")
    assert result.returncode != 0 and "exp/nosuch/valid.loss.ave.pth does not exist" in result.stderr
    result = run(recipe, "--no_such_option", "1")
    assert result.returncode != 0 and "unknown option --no_such_option" in result.stderr
    result = run(recipe, "--pad_to_30s", "maybe")
    assert result.returncode != 0 and "takes true or false" in result.stderr


def test_stage2_lists_every_bad_utterance(recipe):
    assert run(recipe, "--stop_stage", "1", "--local_data_opts", TINY_DATA).returncode == 0
    wav_scp = dict(line.split(maxsplit=1) for line in (recipe / "data/test/wav.scp").read_text().splitlines())
    broken, missing = sorted(wav_scp)[:2]
    Path(wav_scp[broken]).write_bytes(b"RIFF not really a wav")
    wav_scp[missing] = str(recipe / "nowhere.wav")
    (recipe / "data/test/wav.scp").write_text("".join(f"{u} {p}\n" for u, p in sorted(wav_scp.items())))
    result = run(recipe, "--stage", "2", "--stop_stage", "2")
    assert result.returncode != 0
    assert broken in result.stderr and missing in result.stderr and "nowhere.wav" in result.stderr
    assert not (recipe / "dump/raw/test/wav.scp").exists()
