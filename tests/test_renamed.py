"""Renamed options and values (espnet_cs.renamed): each old name stops before any work with an error naming the new one."""

from pathlib import Path

import pytest

from espnet_cs.bin import attention_report, decode, train
from espnet_cs.config_yaml import ConfigError
from espnet_cs.task import CSASRTask

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf" / "tuning"


@pytest.fixture
def no_espnet(monkeypatch: pytest.MonkeyPatch) -> None:
    def espnet_main(*args: object, **kwargs: object) -> None:
        raise AssertionError("ESPnet started")

    monkeypatch.setattr(CSASRTask, "main", espnet_main)


@pytest.mark.parametrize(
    "method, old, new, message",
    [
        ("spt4asr", "task_tokens: zh_en", "lid_prompt: cs", "key 'lid_prompt' was renamed to 'task_tokens'"),
        ("spt4asr", "task_tokens: zh_en", "task_tokens: cs", "task tokens 'cs' were renamed to 'zh_en'"),
        ("spt4asr", "task_tokens: zh_en", "task_tokens: single", "task tokens 'single' were renamed to 'zh'"),
        ("adapter_ag", "fraction: 0.6", "share: 0.6", "model_conf.guidance: key 'share' was renamed to 'fraction'"),
    ],
)
def test_a_training_config_with_an_old_name_names_the_new_one(no_espnet, tmp_path, method, old, new, message):
    config = tmp_path / "old.yaml"
    text = (CONF / f"{method}.yaml").read_text()
    assert old in text
    config.write_text(text.replace(old, new))
    with pytest.raises(SystemExit, match=rf"^espnet_cs.bin.train: {config}: {message}$"):
        train.main(["--config", str(config), "--output_dir", str(tmp_path / "exp")])


def test_a_trained_models_config_with_an_old_name_names_the_new_one(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text((CONF / "lora.yaml").read_text().replace("task_tokens: zh_en", "lid_prompt: cs"))
    message = rf"^{config}: key 'lid_prompt' was renamed to 'task_tokens'$"
    with pytest.raises(ConfigError, match=message):
        CSASRTask.build_model_from_file(str(config), str(tmp_path / "valid.loss.ave.pth"))
    with pytest.raises(ConfigError, match=message):
        CSASRTask.build_inference_model(str(config), str(tmp_path / "valid.loss.ave.pth"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lid_prompt", "cs"], "--lid_prompt was renamed to --task_tokens"),
        (["--task_tokens", "cs"], "argument --task_tokens: task tokens 'cs' were renamed to 'zh_en'"),
        (["--task_tokens", "single"], "argument --task_tokens: task tokens 'single' were renamed to 'zh'"),
    ],
)
def test_old_task_token_options_on_the_command_line_name_the_new_ones(no_espnet, capsys, argv, message):
    with pytest.raises(SystemExit) as error:
        CSASRTask.get_parser().parse_args(argv)
    assert error.value.code == 2 and capsys.readouterr().err.rstrip().endswith(f"error: {message}")
    with pytest.raises(SystemExit) as error:
        decode.get_parser().parse_args(["--data_dir", "d", "--out_dir", "o", *argv])
    assert error.value.code == 2 and capsys.readouterr().err.rstrip().endswith(f"error: {message}")


def test_renamed_options_are_hidden_and_leave_nothing_in_the_options(capsys):
    args = CSASRTask.get_parser().parse_args([])
    assert args.task_tokens == "zh_en" and not any(name.startswith("renamed_") for name in vars(args))
    CSASRTask.get_parser().print_help()
    assert "--lid_prompt" not in capsys.readouterr().out


def test_attention_report_share_names_fraction(capsys, tmp_path):
    argv = ["--data_dir", str(tmp_path), "--lid_heads", "h.json", "--system", "backbone", "--out_dir", str(tmp_path)]
    with pytest.raises(SystemExit) as error:
        attention_report.main([*argv, "--share", "0.6"])
    assert error.value.code == 2 and capsys.readouterr().err.rstrip().endswith(
        "error: --share was renamed to --fraction"
    )
