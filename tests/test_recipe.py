"""The mini_cs recipe end to end (stages 1-12) and its errors, in a copy of the recipe dir."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from recipe_tools import prepared_recipe, run_recipe, zeroshot_args

from espnet_cs.kaldi_dir import read_kaldi_map, write_kaldi_map

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
        "zeroshot_zh",
        "zeroshot_zh_en",
        "zeroshot_zh_guard",
        "zeroshot_zh_en_guard",
        "spt4asr",
        "spt4asr_guard",
    ):
        scores = json.loads((recipe / f"exp/{system}/decode_test/scores.json").read_text())
        assert scores["utterances"] == 4
        assert {"overall_mer", "cs_mer", "zh_cer", "en_wer"} <= scores.keys()
        assert (recipe / f"exp/{system}/decode_test/alignments.txt").exists()
    results = (recipe / "RESULTS.md").read_text()
    assert "| `zeroshot_zh_en` | task tokens `zh_en`, no guard, 30-s padding | 0 | — | — | 4 |" in results
    assert "| `spt4asr` | task tokens `zh_en`, no guard, true length | 2.055M | 3 |" in results
    assert "## LID heads" in results
    assert json.loads((recipe / "RESULTS.json").read_text())["test"]["spt4asr"].keys() >= {"overall_mer", "pier"}
    # stage 10 measures by default every trained model with the zh_en task tokens (spt4asr: language prompts too)
    attention = json.loads((recipe / "exp/attention/test/attention.json").read_text())
    assert list(attention["systems"]) == ["backbone", "spt4asr"] and "## Attention of the guided heads" in results
    result = run(recipe, "--stage", "5", "--stop_stage", "11", "--method", "adapter", "--train_opts", "--max_epoch 1")
    assert result.returncode == 0, result.stderr[-3000:]
    attention = json.loads((recipe / "exp/attention/test/attention.json").read_text())
    assert list(attention["systems"]) == ["backbone", "adapter", "spt4asr"]  # asr.sh names no method
    assert (attention["selection"], attention["fraction"], attention["lid_heads"]) == (
        "top",
        0.6,
        "exp/lid_heads/lid_heads.json",
    )
    assert attention["heads"] and all(layer >= 1 for layer, _ in attention["heads"])  # the heads measured
    assert (recipe / "exp/attention/test/attention.png").exists()
    assert "## Attention of the guided heads on test" in (recipe / "RESULTS.md").read_text()
    # --attention_sets measures on other sets than --test_sets (the AG evidence on valid)
    result = run(
        recipe, "--stage", "10", "--stop_stage", "11", "--attention_sets", "valid", "--attention_systems", "adapter"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    attention = json.loads((recipe / "exp/attention/valid/attention.json").read_text())
    assert list(attention["systems"]) == ["backbone", "adapter"] and attention["systems"]["adapter"]["pairs"] > 0
    assert "## Attention of the guided heads on valid" in (recipe / "RESULTS.md").read_text()
    result = run(recipe, "--stage", "10", "--stop_stage", "10", "--attention_sets", "nosuch")
    assert result.returncode != 0 and "no dump/raw/nosuch/text to measure attention on" in result.stderr
    # a repeated training (resumed: nothing left to do) keeps the earlier log, and the report its time
    row = next(line for line in (recipe / "RESULTS.md").read_text().splitlines() if line.startswith("| `adapter` |"))
    result = run(recipe, "--stage", "5", "--stop_stage", "5", "--method", "adapter", "--train_opts", "--max_epoch 1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "kept the earlier exp/adapter/train.log as exp/adapter/train.1.log" in result.stderr
    assert "1epoch results" in (recipe / "exp/adapter/train.1.log").read_text()
    report = [sys.executable, "-m", "espnet_cs.bin.report", "--exp_dir", "exp", "--out", "RESULTS.md"]
    subprocess.run([*report, "--notes", "local/RESULTS.notes.md"], cwd=recipe, check=True, capture_output=True)
    assert row in (recipe / "RESULTS.md").read_text().splitlines()
    # rerunning stage 3 skips finished decodes, and says why
    again = run(recipe, "--stage", "3", "--stop_stage", "3", "--decode_batch_size", "4")  # the same options
    assert again.returncode == 0
    log = (recipe / "exp/zeroshot_zh_en/decode_test/logdir/decode.1.log").read_text()
    assert "(same audio, model and settings) complete already, skipped" in log
    # --results_archive: stage 11 reports from a copy of what the report reads, which outlives exp/
    result = run(recipe, "--stage", "11", "--stop_stage", "11", "--results_archive", "results")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (recipe / "results/adapter/decode_test/scores.json").exists() and (
        recipe / "results/lid_heads/heads.png"
    ).exists()
    assert "heat map `results/lid_heads/heads.png`" in (recipe / "RESULTS.md").read_text()
    shutil.rmtree(recipe / "exp")  # a new clone
    subprocess.run([*report, "--archive", "results"], cwd=recipe, check=True, capture_output=True)
    assert row in (recipe / "RESULTS.md").read_text().splitlines()


def test_renamed_options_and_methods_fail_naming_the_new_name(recipe):
    """An option or method renamed in this release (conf/renamed.txt) fails before any stage runs."""
    result = run(recipe, "--stage", "5", "--stop_stage", "6", "--method", "adapter_phase1", "--stage2_method", "x")
    assert result.returncode != 0 and "option --stage2_method was renamed to --phase2_method" in result.stderr
    result = run(recipe, "--stage", "5", "--stop_stage", "5", "--method", "adapter_stage1")
    assert result.returncode != 0
    assert "--method adapter_stage1: the method was renamed to adapter_phase1 (conf/tuning/adapter_phase1.yaml)" in (
        result.stderr
    )
    assert "stage 5" not in result.stderr and not (recipe / "exp").exists()


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--two_stage_methods", "x"], "option --two_stage_methods was renamed to --two_phase_methods"),
        (["--stage_max_epoch", "1"], "option --stage_max_epoch was renamed to --phase_max_epoch"),
        (["--stage_iters_per_epoch", "1"], "option --stage_iters_per_epoch was renamed to --phase_iters_per_epoch"),
        (["--methods", "adapter_stage1"], "method adapter_stage1 was renamed to adapter_phase1"),
        (
            ["--two_phase_methods", "adapter_stage1+adapter_ag_stage2"],
            "method adapter_stage1 was renamed to adapter_phase1",
        ),
    ],
)
def test_driver_refuses_renamed_options_and_methods(tmp_path, args, error):
    """local/run_all_methods.sh names the new name of an old one before any work starts."""
    driver = ROOT / "local" / "run_all_methods.sh"
    result = subprocess.run([str(driver), "--recipe", "egs2/mini_cs/asr1", *args], capture_output=True, text=True)
    assert result.returncode != 0 and error in result.stdout + result.stderr
    assert "stages 1-3" not in result.stdout + result.stderr


def test_missing_method_and_unknown_option_are_errors(recipe):
    result = run(recipe, "--stage", "12", "--stop_stage", "12", "--method", "")
    assert result.returncode != 0 and "stage 12 needs --method" in result.stderr
    result = run(recipe, "--stage", "6", "--stop_stage", "6")
    assert result.returncode != 0 and "stage 6 needs --phase2_method" in result.stderr
    result = run(recipe, "--stage", "5", "--stop_stage", "5", "--method", "")
    assert result.returncode != 0 and "stage 5 needs --method" in result.stderr
    for option in ("--method", "--phase2_method"):  # rejected before any stage runs
        result = run(recipe, "--stage", "4", "--stop_stage", "6", "--method", "adapter", option, "nosuch")
        assert result.returncode != 0 and f"{option} nosuch: unknown method" in result.stderr
        assert "spt4asr" in result.stderr and "stage 4" not in result.stderr
    result = run(recipe, "--stage", "8", "--stop_stage", "8", "--method", "adapter")
    assert result.returncode != 0 and "exp/adapter/valid.loss.ave.pth, which does not exist" in result.stderr
    result = run(recipe, "--stop_stage", "2", "--train_set", "my train")
    assert result.returncode != 0 and "--train_set 'my train': a data set is one name" in result.stderr
    assert not (recipe / "dump").exists() and not (recipe / "data").exists()
    result = run(recipe, "--stage", "10", "--stop_stage", "10", "--attention_systems", "nosuch")
    assert result.returncode != 0 and "exp/nosuch/valid.loss.ave.pth does not exist" in result.stderr
    result = run(recipe, "--attention_sets", "valid ../test")
    assert result.returncode != 0 and "--attention_sets: '../test' is not a data set name" in result.stderr
    result = run(recipe, "--no_such_option", "1")
    assert result.returncode != 0 and "unknown option --no_such_option" in result.stderr
    result = run(recipe, "--pad_to_30s", "maybe")
    assert result.returncode != 0 and "takes true or false" in result.stderr


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--zeroshot_lid_prompts", "cs", "option --zeroshot_lid_prompts was renamed to --zeroshot_task_tokens"),
        ("--attention_share", "0.6", "option --attention_share was renamed to --attention_fraction"),
        ("--zeroshot_task_tokens", "single", "--zeroshot_task_tokens: 'single' was renamed to 'zh'"),
        ("--zeroshot_task_tokens", "zh cs", "--zeroshot_task_tokens: 'cs' was renamed to 'zh_en'"),
    ],
)
def test_renamed_options_and_values_name_the_new_ones_before_any_stage(recipe, option, value, message):
    result = run(recipe, option, value)
    assert result.returncode == 1 and result.stderr.rstrip().endswith(message) and len(result.stderr.splitlines()) == 1
    assert not (recipe / "data").exists()


def test_set_names_are_words_and_refused_before_anything_is_made(recipe):
    for option, value, message in [
        ("--train_set", "a/b", "--train_set 'a/b': not a data set name"),
        ("--valid_set", "v;rm", "--valid_set 'v;rm': not a data set name"),
        ("--test_sets", "test $(x)", "--test_sets: '$(x)' is not a data set name"),
    ]:
        result = run(recipe, "--stage", "2", "--stop_stage", "2", option, value)
        assert result.returncode != 0 and message in result.stderr, result.stderr
        assert "stage 2:" not in result.stderr
    for name in ("train", "valid", "my set"):
        (recipe / "data" / name).mkdir(parents=True)
    result = run(recipe, "--stage", "2", "--stop_stage", "2", "--test_sets", "my set")
    assert result.returncode != 0
    assert (
        "--test_sets: no data dir data/my: data/my set exists, but a set name cannot hold a space "
        "(the list is separated by spaces); rename it"
    ) in result.stderr
    assert not (recipe / "dump").exists()
    result = run(recipe, "--stage", "3", "--stop_stage", "3", "--test_sets", "my set")
    assert result.returncode != 0 and "--test_sets: no data dir dump/raw/my" in result.stderr
    assert "stage 3:" not in result.stderr and not (recipe / "exp").exists()


def small_data_dirs(recipe: Path, test_entry: str) -> None:
    """data/train, data/valid and data/test of one utterance each; ``test_entry`` is test's wav.scp entry."""
    audio = recipe / "a.wav"
    sf.write(audio, np.zeros(1600, dtype=np.int16), 16000)
    for dset, entry in (("train", str(audio)), ("valid", str(audio)), ("test", test_entry)):
        write_kaldi_map(recipe / "data" / dset / "wav.scp", {"u1": entry})
        write_kaldi_map(recipe / "data" / dset / "text", {"u1": "hello"})
        write_kaldi_map(recipe / "data" / dset / "utt2spk", {"u1": "s1"})


@pytest.mark.parametrize(
    ("killed", "command"),
    [("main", 'kill -9 $(cut -d" " -f4 /proc/$PPID/stat)'), ("worker", "kill -9 $PPID")],
)
def test_killed_stage2_says_it_was_interrupted_and_resumes(recipe, killed, command):
    """A pipe of wav.scp kills the stage-2 process (or the worker running the pipe), as the
    out-of-memory killer would."""
    small_data_dirs(recipe, f"{command} |")  # the pipe's shell is the worker's child
    result = run(recipe, "--stage", "2", "--stop_stage", "2", "--nj", "1")
    assert result.returncode != 0 and "problems.txt" not in result.stderr and "Traceback" not in result.stderr
    if killed == "main":
        assert (
            "stage 2: formatting data/test into dump/raw/test was killed by SIGKILL (most often the out-of-memory "
            "killer: see dmesg, or use fewer jobs): rerunning stage 2 resumes (the sets formatted so far are kept)"
        ) in result.stderr
    else:
        assert "format_data.py: formatting data/test into dump/raw/test: worker " in result.stderr
        assert "was killed by SIGKILL" in result.stderr
        assert (
            "stage 2: formatting data/test into dump/raw/test was interrupted: a worker process was killed"
            in result.stderr
        )
    assert "rerunning stage 2 resumes (the sets formatted so far are kept)" in result.stderr
    assert (recipe / "dump/raw/train/.done").is_file()
    write_kaldi_map(recipe / "data/test/wav.scp", {"u1": str(recipe / "a.wav")})
    result = run(recipe, "--stage", "2", "--stop_stage", "2", "--nj", "1")
    assert result.returncode == 0, result.stderr
    assert "dump/raw/train was made from data/train as it is now" in result.stderr
    assert (recipe / "dump/raw/test/.done").is_file()


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


def test_help_installs_nothing(recipe, tmp_path):
    """The usage comes before tools/install.sh: with a venv that does not exist and a Python that
    cannot make one, --help still prints it."""
    env = {**os.environ, "ESPNET_CS_VENV": str(tmp_path / "no_venv"), "PYTHON": "false"}
    result = subprocess.run(["./asr.sh", "--help"], cwd=recipe, capture_output=True, text=True, env=env)
    assert result.returncode == 0 and "Usage: ./asr.sh [options]" in result.stdout
    assert not (tmp_path / "no_venv").exists() and "install.sh" not in result.stderr


def test_stage2_lists_the_problems_of_every_set(recipe):
    assert run(recipe, "--stop_stage", "1", "--local_data_opts", TINY_DATA).returncode == 0
    for dset in ("valid", "test"):
        text = (recipe / f"data/{dset}/text").read_text().splitlines()
        text[0] = text[0].split()[0] + " ，。"
        (recipe / f"data/{dset}/text").write_text("\n".join(text) + "\n")
    result = run(recipe, "--stage", "2", "--stop_stage", "2")
    assert result.returncode != 0
    assert "problems in 2 data set(s): valid (dump/raw/valid/problems.txt) test (dump/raw/test/problems.txt)" in (
        result.stderr
    )
    assert (recipe / "dump/raw/train/.done").exists()  # the good set is formatted all the same
    for dset in ("valid", "test"):
        assert "no word left after the scoring normalization" in (recipe / f"dump/raw/{dset}/problems.txt").read_text()


def test_rerun_redoes_what_changed_and_says_why(tmp_path, tiny_whisper_path):
    """Decode, then give one test utterance other audio and text under the same id and path: the
    rerun of stages 2, 3 and 9 reformats, re-decodes and scores it against its new text. Then
    stage 9 scores what it can and lists the decode dirs it cannot score."""
    recipe = prepared_recipe(tmp_path / "recipe")
    stages = zeroshot_args(tiny_whisper_path, 2)[4:]  # the stage-3 options, without --stage/--stop_stage
    result = run_recipe(recipe, "--stage", "3", "--stop_stage", "3", *stages)
    assert result.returncode == 0, result.stderr[-3000:]
    decode = recipe / "exp/zeroshot_zh_en/decode_test"
    before = read_kaldi_map(decode / "text", verbatim=True)
    wav_scp = read_kaldi_map(recipe / "data/test/wav.scp")
    changed, donor = sorted(wav_scp)[:2]
    shutil.copyfile(wav_scp[donor], wav_scp[changed])  # same path, other audio
    text = read_kaldi_map(recipe / "data/test/text")
    write_kaldi_map(recipe / "data/test/text", {**text, changed: "新的 words"})

    result = run_recipe(recipe, "--stage", "2", "--stop_stage", "3", *stages)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run_recipe(recipe, "--stage", "9", "--stop_stage", "9").returncode == 0
    assert (
        f"changed in data/test since dump/raw/test was made: audio files ({wav_scp[changed]}: other bytes), text"
    ) in result.stderr
    assert "dump/raw/train was made from data/train as it is now" in result.stderr  # unchanged sets are kept
    logs = "".join(p.read_text() for p in sorted((decode / "logdir").glob("decode.*.log")))
    assert "changed since exp/zeroshot_zh_en/decode_test/logdir/output." in logs and "audio_sha256" in logs
    after = read_kaldi_map(decode / "text", verbatim=True)
    assert after[changed] == before[donor]  # the same audio gives the same hypothesis, whatever the batch
    assert {u: h for u, h in after.items() if u != changed} == {u: h for u, h in before.items() if u != changed}
    scored = json.loads((decode / "scores.json").read_text())
    block = (decode / "alignments.txt").read_text().split(f"id: {changed}\n", 1)[1]
    reference = next(line for line in block.splitlines() if line.startswith("REF:")).split()[1:]
    assert scored["utterances"] == 4 and [t for t in reference if t.strip("*")] == ["新", "的", "words"]

    result = run_recipe(recipe, "--stage", "2", "--stop_stage", "3", *stages)  # nothing changed now
    assert (
        result.returncode == 0
        and "as it is now (data files and the bytes of every audio file); skipped" in result.stderr
    )
    logs = "".join(p.read_text() for p in (decode / "logdir").glob("decode.*.log"))
    assert logs.count("complete already, skipped") == 2

    (recipe / "exp/broken/decode_test").mkdir(parents=True)
    (recipe / "exp/broken/decode_test/text").write_text("not_an_utterance hello\n")
    (recipe / "exp/unfinished/decode_test").mkdir(parents=True)
    result = run_recipe(recipe, "--stage", "9", "--stop_stage", "9")
    assert result.returncode != 0
    assert "stage 9: exp/zeroshot_zh_en/decode_test" in result.stderr and (decode / "scores.json").exists()
    listed = result.stderr.split("could not score 2 decode dir(s):", 1)[1]
    assert "exp/broken/decode_test: " in listed and "not_an_utterance" in listed
    assert "exp/unfinished/decode_test: no hypotheses" in listed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--decode_variant", "beam 5"], "--decode_variant 'beam 5': not one word of letters, digits"),
        (["--decode_variant", "beam5_guard"], "--decode_variant beam5_guard: <system>_guard names the guarded"),
        (["--decode_variant", "en"], "exp/zeroshot_zh_en is the dir of the system zeroshot_zh_en"),
        (["--method", "adapter", "--decode_variant", "ag"], "exp/adapter_ag is the dir of the system adapter_ag"),
        (["--results_guarded", "some"], "--results_guarded some: one of tables, all, none"),
    ],
)
def test_bad_decode_variants_are_refused_before_any_stage(recipe, args, message):
    result = run(recipe, *args)
    assert result.returncode == 1 and message in result.stderr and not (recipe / "data").exists()


def test_a_decode_variant_decodes_beside_greedy_and_the_report_compares_them(tmp_path, tiny_whisper_path):
    recipe = prepared_recipe(tmp_path / "recipe")
    stage3 = zeroshot_args(tiny_whisper_path, 1)
    assert run_recipe(recipe, *stage3).returncode == 0
    greedy = recipe / "exp/zeroshot_zh_en/decode_test"
    before = (greedy / "text").stat().st_mtime_ns
    result = run_recipe(recipe, *stage3, "--decode_variant", "beam2", "--beam_size", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (greedy / "text").stat().st_mtime_ns == before and "beam_size" not in (
        greedy / "decode_info.json"
    ).read_text()
    for system in ("zeroshot_zh_en_beam2", "zeroshot_zh_en_beam2_guard"):
        info = json.loads((recipe / f"exp/{system}/decode_test/decode_info.json").read_text())
        assert info["decode_variant"] == "beam2" and info["beam_size"] == 2
    result = run_recipe(recipe, *stage3, "--decode_variant", "beam2", "--beam_size", "3")
    assert result.returncode != 0
    assert "holds decode variant beam2 made with other decoding options (beam_size 2 -> 3)" in result.stderr
    result = run_recipe(recipe, "--stage", "9", "--stop_stage", "11", "--results_guarded", "all")
    assert result.returncode == 0, result.stderr[-3000:]
    results = (recipe / "RESULTS.md").read_text()
    assert "## Decoding: greedy, beam search, fallback" in results
    assert (
        "| test | `zeroshot_zh_en` | — | greedy |" in results
        and "| test | `zeroshot_zh_en` | `beam2` | beam 2 |" in results
    )
    assert "| test | `zeroshot_zh_en` | `beam2` | beam 2, guard |" in results
    assert "| `zeroshot_zh_en_beam2` |" not in results  # not a row of the results table
