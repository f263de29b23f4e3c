"""Parallel jobs: data split into whole batches, decoding (stage 3) and head selection (stage 4) over
--nj jobs merged equal to one job, reruns redoing only unfinished jobs, merge errors; training under
DistributedDataParallel."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from espnet2.train.distributed_utils import free_port
from recipe_tools import DECODE_FILES, ROOT, prepared_recipe, recipe_copy, run_recipe, zeroshot_args

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.decode_dir import (
    check_variant_name,
    decode_staleness,
    merge_decode_dirs,
    settings_of,
    variant_conflict,
    write_decode_dir,
)
from espnet_cs.splitting import longest_first, make_batches, split_batches, write_splits

LENGTHS = {"a": 5, "b": 9, "c": 5, "d": 1, "e": 7, "f": 9, "g": 3}


def test_batches_are_longest_first_ties_by_key_and_go_round_robin():
    assert longest_first(LENGTHS) == ["b", "f", "e", "a", "c", "g", "d"]
    batches = make_batches(LENGTHS, 2)
    assert batches == [["b", "f"], ["e", "a"], ["c", "g"], ["d"]]
    assert split_batches(batches, 3) == [["b", "f", "d"], ["e", "a"], ["c", "g"]]
    assert split_batches(batches, 9) == batches  # never an empty split
    for split in split_batches(batches, 3):  # a split's own batches are the global ones
        assert all(batch in batches for batch in make_batches({u: LENGTHS[u] for u in split}, 2))


def test_split_dirs_carry_every_file_and_stale_splits_go(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name, value in (
        ("wav.scp", "{}.wav"),
        ("text", "text of {}"),
        ("utt2spk", "spk_{}"),
        ("utt2num_samples", None),
    ):
        (data / name).write_text("".join(f"{u} {value.format(u) if value else LENGTHS[u]}\n" for u in sorted(LENGTHS)))
    (tmp_path / "split/7").mkdir(parents=True)
    assert write_splits(data, tmp_path / "split", 3, 2) == 3
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == ["1", "2", "3"]
    assert (tmp_path / "split/2/wav.scp").read_text() == "a a.wav\ne e.wav\n"
    assert (tmp_path / "split/2/spk2utt").read_text() == "spk_a a\nspk_e e\n"
    assert (tmp_path / "split/1/text").read_text() == "b text of b\nd text of d\nf text of f\n"
    (data / "utt2num_samples").unlink()
    with pytest.raises(FileNotFoundError, match="stage-2 outputs"):
        write_splits(data, tmp_path / "split", 3, 2)


def fake_decode(out_dir: Path, utts: list[str], **settings) -> None:
    info = {
        "data_dir": str(out_dir),
        "task_tokens": "zh_en",
        **settings,
        "utterances": len(utts),
        "audio_samples": SAMPLE_RATE * len(utts),
        "decode_seconds": 1.0,
        "audio_seconds": float(len(utts)),
        "real_time_factor": 1.0,
    }
    write_decode_dir(
        out_dir,
        info,
        {
            "token": {u: "1 2" for u in utts},
            "token_lang": {u: "zh en" for u in utts},
            "text": {u: f" hyp {u}" for u in utts},
        },
    )


def test_merge_keeps_hypotheses_byte_for_byte_and_names_bad_splits(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("u1 1.wav\nu2 2.wav\nu3 3.wav\n")
    (data / "utt2sha256").write_text("u1 1a\nu2 2b\nu3 3c\n")
    fake_decode(tmp_path / "s1", ["u3", "u1"])
    fake_decode(tmp_path / "s2", ["u2"])
    info = merge_decode_dirs([tmp_path / "s1", tmp_path / "s2"], data, tmp_path / "merged")
    assert (tmp_path / "merged/text").read_text() == "u1  hyp u1\nu2  hyp u2\nu3  hyp u3\n"
    assert info["utterances"] == 3 and info["decode_seconds"] == 2.0 and info["jobs"] == 2
    assert info["audio_seconds"] == 3.0 and info["data_dir"] == str(data)

    fake_decode(tmp_path / "s2", ["u2"], task_tokens="zh")
    with pytest.raises(ValueError, match=r"s2 was decoded with other settings .*\['task_tokens'\]"):
        merge_decode_dirs([tmp_path / "s1", tmp_path / "s2"], data, tmp_path / "merged")
    fake_decode(tmp_path / "s2", ["u1"])
    with pytest.raises(ValueError, match="decoded by another split too"):
        merge_decode_dirs([tmp_path / "s1", tmp_path / "s2"], data, tmp_path / "merged")
    with pytest.raises(ValueError, match=r"missing \['u2'\]"):
        merge_decode_dirs([tmp_path / "s1"], data, tmp_path / "merged")
    (tmp_path / "s1/text").unlink()
    with pytest.raises(ValueError, match="s1 is not a complete decode"):
        merge_decode_dirs([tmp_path / "s1", tmp_path / "s2"], data, tmp_path / "merged")


def test_staleness_names_what_changed(tmp_path):
    settings = {"audio_sha256": "a", "model_file_sha256": "m", "batch_size": 2}
    assert decode_staleness(tmp_path / "d", settings) == f"{tmp_path / 'd'} holds no complete decode"
    fake_decode(tmp_path / "d", ["u1"], **settings)
    recorded = {**settings, "data_dir": str(tmp_path / "d"), "task_tokens": "zh_en"}
    assert decode_staleness(tmp_path / "d", recorded) is None
    assert decode_staleness(tmp_path / "d", {**recorded, "audio_sha256": "b", "model_file_sha256": "n"}) == (
        f"changed since {tmp_path / 'd'} was decoded: audio_sha256, model_file_sha256"
    )
    (tmp_path / "d/text").unlink()  # removed first when a decode starts: incomplete
    assert decode_staleness(tmp_path / "d", recorded) == f"{tmp_path / 'd'} holds no complete decode"


def test_a_decode_variant_never_holds_decodes_of_other_options(tmp_path):
    beam5 = {"audio_sha256": "a", "batch_size": 2, "decode_variant": "beam5", "beam_size": 5, "patience": 1.0}
    assert variant_conflict(tmp_path / "d", beam5) is None  # nothing decoded yet
    fake_decode(tmp_path / "d", ["u1"], **beam5)
    recorded = settings_of(json.loads((tmp_path / "d/decode_info.json").read_text()))
    assert variant_conflict(tmp_path / "d", recorded) is None
    # other audio, model or batch size: redone (decode_staleness), the options are the variant's still
    assert variant_conflict(tmp_path / "d", {**recorded, "audio_sha256": "b", "batch_size": 4}) is None
    greedy = {k: v for k, v in recorded.items() if k not in ("beam_size", "patience")}
    assert variant_conflict(tmp_path / "d", {**greedy, "fallback": {"best_of": 5}}) == (
        f"{tmp_path / 'd'} holds decode variant beam5 made with other decoding options (beam_size 5 -> None; "
        "fallback None -> {'best_of': 5}; patience 1.0 -> None): name these options another decode variant, "
        f"or remove {tmp_path / 'd'} to decode beam5 again"
    )
    assert variant_conflict(tmp_path / "d", {**greedy, "decode_variant": "greedy"}) is None  # another variant's
    assert variant_conflict(tmp_path / "d", greedy | {"decode_variant": ""}) is None  # no variant: as before

    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text("u1 1.wav\n")
    (data / "utt2sha256").write_text("u1 1a\n")
    fake_decode(tmp_path / "s1", ["u1"], **{**beam5, "beam_size": 3})
    with pytest.raises(
        ValueError, match=r"d holds decode variant beam5 made with other decoding options \(beam_size 5 -> 3\)"
    ):
        merge_decode_dirs([tmp_path / "s1"], data, tmp_path / "d")


@pytest.mark.parametrize("name", ["beam 5", "", "-beam5", "beam5/x", "guard", "beam5_guard", "$(x)"])
def test_decode_variant_names_are_words_without_the_guard_suffix(name):
    with pytest.raises(ValueError, match=f"decode variant {re.escape(repr(name))}: "):
        check_variant_name(name)
    check_variant_name("beam5_fallback")


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory) -> Path:
    return prepared_recipe(tmp_path_factory.mktemp("recipe"))


def assert_same_decodes(a: Path, b: Path) -> None:
    """Same hypotheses and settings in both recipes' stage-3 outputs (cost figures aside)."""
    for system in ("zeroshot_zh_en", "zeroshot_zh_en_guard"):
        dirs = [recipe / f"exp/{system}/decode_test" for recipe in (a, b)]
        for name in DECODE_FILES:
            assert (dirs[0] / name).read_bytes() == (dirs[1] / name).read_bytes(), name
        infos = [json.loads((d / "decode_info.json").read_text()) for d in dirs]
        assert settings_of(infos[0]) == settings_of(infos[1])
        assert infos[0]["utterances"] == infos[1]["utterances"] == 4


def test_decoding_in_two_jobs_equals_one_and_rerun_redoes_only_unfinished(tiny_recipe, tiny_whisper_path, tmp_path):
    one, two = (recipe_copy(tmp_path / f"nj{nj}", data_from=tiny_recipe) for nj in (1, 2))
    for recipe, nj in ((one, 1), (two, 2)):
        result = run_recipe(recipe, *zeroshot_args(tiny_whisper_path, nj))
        assert result.returncode == 0, result.stderr[-3000:]
    logdir = two / "exp/zeroshot_zh_en/decode_test/logdir"
    assert sorted(p.name for p in (logdir / "split2").iterdir()) == ["1", "2"]
    assert json.loads((two / "exp/zeroshot_zh_en/decode_test/decode_info.json").read_text())["jobs"] == 2
    assert_same_decodes(one, two)

    # a job that did not finish: only it runs again, the merge is the same
    shutil.rmtree(logdir / "output.2")
    (two / "exp/zeroshot_zh_en/decode_test/text").unlink()
    first = (logdir / "output.1/text").stat().st_mtime_ns
    result = run_recipe(two, *zeroshot_args(tiny_whisper_path, 2))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "complete already, skipped" in (logdir / "decode.1.log").read_text()
    assert "decoded 2 utterances" in (logdir / "decode.2.log").read_text()
    assert (logdir / "output.1/text").stat().st_mtime_ns == first
    assert_same_decodes(one, two)


@pytest.mark.integration
def test_head_selection_in_two_jobs_equals_one(tmp_path):
    # 4 training utterances in 2 batches of 2; the split jobs' statistics merge to one job's exactly.
    data = prepared_recipe(tmp_path / "data", "--num_train 4 --num_valid 2 --num_test 2 --nj 2")
    outputs = []
    for nj in (1, 2):
        recipe = recipe_copy(tmp_path / f"nj{nj}", data_from=data)
        result = run_recipe(recipe, "--stage", "4", "--stop_stage", "4", "--nj", str(nj), "--head_batch_size", "2")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "heads are LID heads" in result.stderr
        outputs.append(recipe / "exp/lid_heads")
    assert len(list(outputs[1].glob("logdir/stats.*.npz"))) == 2
    heads = [json.loads((out / "lid_heads.json").read_text()) for out in outputs]
    assert heads[0]["counts"] == heads[1]["counts"] and heads[0]["n_sentences"] == 4
    for name in ("lid_heads.json", "heads.png"):
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name


def test_training_under_distributed_data_parallel(tiny_recipe, tiny_whisper_path, tmp_path):
    """Two CPU processes (gloo), launched as torchrun launches one per GPU: the model trains under
    DistributedDataParallel and saves trainable-only checkpoints, as in one process."""
    data = {phase: f"dump/raw/{phase}" for phase in ("train", "valid")}  # wav.scp paths are relative to the recipe
    args = [
        "--config",
        str(ROOT / "conf/tuning/spt_enc.yaml"),
        "--whisper_model",
        str(tiny_whisper_path),
        "--ngpu",
        "0",
        "--multiprocessing_distributed",
        "false",
        "--dist_backend",
        "gloo",
        "--output_dir",
        str(tmp_path / "exp"),
        "--max_epoch",
        "1",
        "--batch_size",
        "2",
        "--num_workers",
        "0",
        "--use_tensorboard",
        "false",
        "--use_matplotlib",
        "false",
    ]
    for phase, path in data.items():
        args += [
            f"--{phase}_data_path_and_name_and_type",
            f"{path}/wav.scp,speech,sound",
            f"--{phase}_data_path_and_name_and_type",
            f"{path}/text,text,text",
            f"--{phase}_shape_file",
            f"{path}/speech_shape",
        ]
    torchrun = Path(sys.executable).parent / "torchrun"
    result = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_port", str(free_port()), "-m", "espnet_cs.bin.train", *args],
        cwd=tiny_recipe,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"\[[^]]*:0/2\].*training was finished", result.stderr)
    checkpoint = torch.load(tmp_path / "exp/valid.loss.ave.pth", map_location="cpu", weights_only=False)
    assert sorted(checkpoint) == ["backbone_sha256", "encoder.soft_prompts.vectors"]
