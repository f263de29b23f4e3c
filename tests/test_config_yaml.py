"""Strict reading of every YAML file: a repeated key is an error naming the file, the key and both
lines (method configs, conf/slurm.yaml, a training config written back), and a configuration
error in training is one line before ESPnet starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from espnet_cs.bin import train
from espnet_cs.config_yaml import ConfigError, load_yaml, loads_yaml
from espnet_cs.task import CSASRTask

ROOT = Path(__file__).resolve().parents[1]
SPT4ASR = ROOT / "conf" / "tuning" / "spt4asr.yaml"


def repeated_encoder_conf(tmp_path: Path) -> Path:
    """SPT4ASR's config with a second ``encoder_conf`` block appended: YAML would keep only that one."""
    config = tmp_path / "spt4asr.yaml"
    config.write_text(SPT4ASR.read_text() + "encoder_conf:\n    pad_to_30s: true\n")
    return config


def line_of(path: Path, start: str, occurrence: int = 0) -> int:
    return [i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(start)][occurrence]


def test_repeated_key_names_file_key_and_both_lines(tmp_path: Path) -> None:
    config = repeated_encoder_conf(tmp_path)
    first, second = line_of(config, "encoder_conf:"), line_of(config, "encoder_conf:", 1)
    with pytest.raises(ConfigError) as error:
        load_yaml(config)
    assert str(error.value) == (
        f"{config}: key 'encoder_conf' appears twice, at lines {first} and {second}; "
        "YAML would keep only the second: merge them into one"
    )
    with pytest.raises(ConfigError, match=r"x.yaml: key 'length' appears twice, at lines 2 and 3"):
        loads_yaml("a:\n  length: 1\n  length: 2\n", "x.yaml")
    with pytest.raises(ConfigError, match=r"x.yaml: key 'a' appears twice, at lines 1 and 1"):
        loads_yaml("{a: 1, a: 2}", "x.yaml")


def test_merge_keys_may_be_overridden_and_other_files_read_as_before() -> None:
    assert loads_yaml("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n", "m.yaml")["other"] == {"x": 1, "y": 3}
    for path in sorted((ROOT / "conf" / "tuning").glob("*.yaml")) + [ROOT / "egs2/TEMPLATE/asr1/conf/slurm.yaml"]:
        assert isinstance(load_yaml(path), dict), path


def test_text_that_is_not_yaml_names_the_file_and_line() -> None:
    with pytest.raises(ConfigError, match=r"^b.yaml:2: not valid YAML \("):
        loads_yaml("a: 1\n b: [\n", "b.yaml")


def test_training_config_error_is_one_line_before_espnet_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def espnet_main(*args: object, **kwargs: object) -> None:
        raise AssertionError("ESPnet started")

    monkeypatch.setattr(CSASRTask, "main", espnet_main)
    config = repeated_encoder_conf(tmp_path)
    with pytest.raises(SystemExit) as error:
        train.main(["--config", str(config), "--output_dir", str(tmp_path / "exp")])
    assert str(error.value).startswith(f"espnet_cs.bin.train: {config}: key 'encoder_conf' appears twice, at lines")
    typo = tmp_path / "typo.yaml"
    typo.write_text(SPT4ASR.read_text().replace("max_epoch:", "max_epochs:"))
    with pytest.raises(SystemExit, match=rf"^espnet_cs.bin.train: {typo}: unknown key\(s\) \['max_epochs'\]"):
        train.main(["--config", str(typo)])
    nested = tmp_path / "nested.yaml"
    nested.write_text(SPT4ASR.read_text().replace("pad_to_30s: false", "pad_to_30: false"))
    with pytest.raises(SystemExit, match=rf"^espnet_cs.bin.train: {nested}: encoder_conf of CSWhisperEncoder: "):
        train.main(["--config", str(nested)])
    with pytest.raises(ConfigError):  # --verbose: the error itself, with its traceback
        train.main(["--config", str(nested), "--verbose"])


def test_training_config_error_shows_no_traceback(tmp_path: Path) -> None:
    config = repeated_encoder_conf(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "espnet_cs.bin.train", "--config", str(config), "--output_dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        f"espnet_cs.bin.train: {config}: key 'encoder_conf' appears twice, at lines "
        f"{line_of(config, 'encoder_conf:')} and {line_of(config, 'encoder_conf:', 1)}; "
        "YAML would keep only the second: merge them into one"
    )


def test_written_back_config_is_read_strictly(tmp_path: Path) -> None:
    config = repeated_encoder_conf(tmp_path)
    with pytest.raises(ConfigError, match="key 'encoder_conf' appears twice"):
        CSASRTask.build_model_from_file(config, tmp_path / "missing.pth")
    with pytest.raises(ConfigError, match="key 'encoder_conf' appears twice"):
        CSASRTask.build_inference_model(config, tmp_path / "missing.pth")


def test_slurm_config_is_read_strictly(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    slurm = tmp_path / "conf" / "slurm.yaml"
    slurm.write_text("decode:\n  mem: 4G\n  mem: 8G\n")
    run = subprocess.run(
        [str(ROOT / "egs2/TEMPLATE/asr1/utils/run_slurm.sh"), "--class", "decode", "x.log", "true"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={  # as after path.sh: the environment's python, this checkout first
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "PYTHONPATH": str(ROOT),
        },
    )
    assert run.returncode == 1
    assert "conf/slurm.yaml: key 'mem' appears twice, at lines 2 and 3" in run.stderr
