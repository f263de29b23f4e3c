"""The cs_bench corpus: its plan, its sets' separation, generated data dirs and the recipe's stages 1-2."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_cs.bin.synth_bench import main
from espnet_cs.kaldi_dir import read_kaldi_map
from espnet_cs.synth import bench
from espnet_cs.synth.acoustics import ConditionRanges
from espnet_cs.synth.bench import SETS, VARIANT_POOLS, draw_speakers, plan, render

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"train": 4, "valid": 2, "test": 3, "forget_en": 2, "forget_zh": 2}
TINY = ["--num_train", "4", "--num_valid", "2", "--num_test", "3", "--num_forget", "2", "--rooms", "2", "--nj", "2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny cs_bench through the CLI, two processes, two rooms per set; returns its root."""
    root = tmp_path_factory.mktemp("cs_bench")
    main(["--data_dir", str(root / "data"), "--wav_dir", str(root / "wav"), *TINY])
    return root


def test_voices_and_speakers_of_the_sets_are_disjoint():
    pools = list(VARIANT_POOLS.values())
    assert sum(len(p) for p in pools) == len(set().union(*pools)) == len(bench.VARIANTS)
    speakers = {name: draw_speakers(name, 0) for name in SETS}
    assert not {s.variant for s in speakers["test"]} & {s.variant for s in speakers["train"]}
    assert not {s.variant for s in speakers["forget_en"]} & {s.variant for s in speakers["train"]}
    assert len({s.name for group in speakers.values() for s in group}) == sum(map(len, speakers.values()))
    scales = [s.formant for s in speakers["train"]]
    assert 0.9 <= min(scales) < 0.97 and 1.03 < max(scales) <= 1.1
    assert draw_speakers("test", 0) == speakers["test"] != draw_speakers("test", 1)


def test_plan_is_deterministic_and_follows_the_mix():
    utterances = plan("test", 100, seed=3)
    assert utterances == plan("test", 100, seed=3) != plan("test", 100, seed=4)
    assert [u.utt_id for u in utterances] == sorted(u.utt_id for u in utterances)
    assert [sum(u.category == c for u in utterances) for c in ("cs", "zh", "en")] == [60, 20, 20]
    assert len({u.text for u in utterances}) == 100
    babbled = [u for u in utterances if u.condition.noise == "babble"]
    assert babbled and all(len(u.babble) == u.condition.babble_talkers for u in babbled)
    assert all(u.speaker not in {s for _, s in u.babble} for u in babbled)
    assert all(not u.babble for u in utterances if u.condition.noise != "babble")
    assert {u.category for u in plan("forget_zh", 5, seed=0)} == {"zh"}
    with pytest.raises(ValueError, match="unknown cs_bench set 'dev'"):
        plan("dev", 5, seed=0)


def test_data_dirs_hold_every_set_with_its_conditions(corpus):
    for name, num in SIZES.items():
        data = corpus / "data" / name
        wav_scp, text = read_kaldi_map(data / "wav.scp"), read_kaldi_map(data / "text")
        assert len(wav_scp) == len(text) == num
        assert read_kaldi_map(data / "utt2spk").keys() == wav_scp.keys()
        conditions = read_kaldi_map(data / "utt2condition")
        assert conditions.keys() == wav_scp.keys()
        for line in conditions.values():
            assert re.fullmatch(
                r"speed=(0\.9|1\.0|1\.1) rt60=(dry|\d\.\d\d) noise=(none|white|pink|brown|babble/[3-6])"
                r"( snr=\d+\.\d)? level=-\d+\.\d",
                line,
            ), line
        for path in wav_scp.values():
            info = sf.info(path)
            assert info.samplerate == 16000 and info.channels == 1 and 1.0 < info.duration < 30.0
    assert len(list((corpus / "wav").glob("rooms_*.npz"))) == len(SETS)


def test_a_wav_is_a_pure_function_of_its_plan(corpus):
    ranges = ConditionRanges(rooms=2)
    utterances = plan("test", SIZES["test"], seed=0, ranges=ranges)
    rirs, _ = bench.rooms_of("test", 0, ranges, corpus / "wav")
    wav_scp = read_kaldi_map(corpus / "data/test/wav.scp")
    for utterance in utterances:
        stored, _ = sf.read(wav_scp[utterance.utt_id], dtype="int16")
        np.testing.assert_array_equal(stored, render(utterance, rirs))


def test_rerun_resumes_and_rewrites_only_what_is_missing(corpus):
    wavs = sorted((corpus / "wav" / "train").glob("*.wav"))
    stamps = {w: w.stat().st_mtime_ns for w in wavs}
    wavs[0].unlink()
    main(["--data_dir", str(corpus / "data"), "--wav_dir", str(corpus / "wav"), *TINY])
    assert wavs[0].exists()
    assert all(w.stat().st_mtime_ns == stamps[w] for w in wavs[1:])


def test_conditions_only_writes_the_generated_utt2condition_without_speech(corpus, tmp_path):
    cached = tmp_path / "from_cache"  # the rooms read from the corpus's cache
    main(["--data_dir", str(cached), "--wav_dir", str(corpus / "wav"), "--conditions_only", *TINY])
    for name in SETS:
        assert [p.name for p in (cached / name).iterdir()] == ["utt2condition"]
        assert (cached / name / "utt2condition").read_text() == (corpus / "data" / name / "utt2condition").read_text()
    simulated = tmp_path / "simulated"  # the rooms simulated again, of one set
    wav_dir = tmp_path / "wav"
    main(["--data_dir", str(simulated), "--wav_dir", str(wav_dir), "--conditions_only", "--sets", "test", *TINY])
    assert [p.name for p in simulated.iterdir()] == ["test"]
    assert (simulated / "test/utt2condition").read_text() == (corpus / "data/test/utt2condition").read_text()
    assert [p.name for p in wav_dir.iterdir()] == [next((corpus / "wav").glob("rooms_test_*.npz")).name]


@pytest.mark.integration
def test_recipe_generates_and_formats_every_set(tmp_path):
    for name in ("run.sh", "asr.sh", "path.sh", "cmd.sh", "utils", "local", "conf"):
        (tmp_path / name).symlink_to(ROOT / "egs2/cs_bench/asr1" / name)
    options = "--num_train 3 --num_valid 2 --num_test 3 --num_forget 2 --rooms 2 --nj 2"
    result = subprocess.run(
        ["./run.sh", "--stop_stage", "2", "--local_data_opts", options],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name, num in {"train": 3, "valid": 2, "test": 3, "forget_en": 2, "forget_zh": 2}.items():
        assert (tmp_path / "dump/raw" / name / ".done").exists(), name
        assert len(read_kaldi_map(tmp_path / "dump/raw" / name / "text")) == num
