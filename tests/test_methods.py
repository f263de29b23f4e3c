"""The method list (conf/tuning, espnet_cs.methods) and the model training builds of each method."""

from __future__ import annotations

import shutil

import pytest

from espnet_cs import methods as method_list
from espnet_cs.methods import CONF, RENAMED, group, method_config, methods, read_method
from espnet_cs.task import CSASRTask, build_trainable_model, count_trainable

# Trainable parameters of every method on Whisper-base and Whisper-small, as benchmarks/RESULTS.md records them.
TRAINABLE = {
    "adapter": (4_760_064, 14_275_584),
    "adapter_ag": (4_760_064, 14_275_584),
    "adapter_ag_phase2": (4_760_064, 14_275_584),
    "adapter_ag_phase2_all": (4_760_064, 14_275_584),
    "adapter_ag_phase2_random50": (4_760_064, 14_275_584),
    "adapter_phase1": (2_380_032, 7_137_792),
    "dpt": (460_800, 1_382_400),
    "fft": (71_825_920, 240_582_912),
    "fft_spt": (71_956_992, 240_779_520),
    "lora": (1_179_648, 3_538_944),
    "lpt": (197_184, 295_744),
    "respt": (1_708_544, 2_562_048),
    "spt4asr": (2_055_184, 3_773_200),
    "spt4asr_init_text": (2_055_184, 3_773_200),  # SPT4ASR's, started or trained otherwise
    "spt4asr_no_prompt_decay": (2_055_184, 3_773_200),
    "spt4asr_zero_last": (2_055_184, 3_773_200),
    "spt_both": (131_072, 196_608),
    "spt_dec": (65_536, 98_304),
    "spt_enc": (65_536, 98_304),
}


@pytest.mark.parametrize("name", sorted(methods()))
def test_every_method_yaml_parses_with_the_training_parser(name):
    """ESPnet's config parser accepts every key, the method's description included."""
    method = methods()[name]
    args = CSASRTask.get_parser().parse_args(["--config", str(method.config)])
    assert args.family == method.family
    assert args.starts_from == method.starts_from
    assert tuple(args.combines) == method.combines


def test_groups_cover_every_method_once():
    """Each YAML is run by the driver once: alone, as an adapter method, or in a two-phase pair."""
    one_phase, adapter, two_phase = group("one_phase"), group("adapter"), group("two_phase")
    firsts = {pair.split("+")[0] for pair in two_phase}
    seconds = [pair.split("+")[1] for pair in two_phase]
    assert sorted([*one_phase, *adapter, *firsts, *seconds]) == sorted(methods())
    assert "adapter_ag" in adapter and "adapter_phase1+adapter_ag_phase2" in two_phase
    assert {"adapter_ag", *seconds} <= set(group("guided"))
    assert methods()["adapter_ag_phase2"].system == "adapter_phase1+adapter_ag_phase2"


def test_single_prompt_variants_leave_out_combinations_and_guided_methods(tmp_path):
    assert method_list.single_prompt_variants() == ["dpt", "lpt", "respt", "spt_both", "spt_dec", "spt_enc"]
    for name in ("spt4asr", "dpt", "respt", "lpt", "adapter_ag"):
        shutil.copy(CONF / f"{name}.yaml", tmp_path / f"{name}.yaml")
    guided_prompts = (CONF / "spt4asr.yaml").read_text().replace("combines: [dpt, respt, lpt]", "")
    guidance = (CONF / "adapter_ag.yaml").read_text().split("model_conf:")[1].split("freeze_param:")[0]
    (tmp_path / "spt_guided.yaml").write_text(guided_prompts + "model_conf:" + guidance)
    assert methods(tmp_path)["spt_guided"].guided
    assert method_list.single_prompt_variants(tmp_path) == ["dpt", "lpt", "respt"]


def test_cli_prints_a_group(capsys):
    method_list.main(["two_phase"])
    assert capsys.readouterr().out.split() == group("two_phase")


def test_a_yaml_without_family_or_with_unknown_names_is_refused(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("encoder: whisper_cs\n")
    with pytest.raises(
        ValueError, match=rf"{config}: family must be one of \['spt', 'adapter', 'lora', 'fft'\], not None"
    ):
        read_method(config)
    config.write_text("family: spt\ncombines: [dpt]\n")
    with pytest.raises(ValueError, match=rf"{config}: names \['dpt'\], which have no YAML in {tmp_path}"):
        methods(tmp_path)
    shutil.copy(CONF / "dpt.yaml", tmp_path / "dpt.yaml")
    assert list(methods(tmp_path)) == ["dpt", "mine"]


@pytest.mark.parametrize("name", sorted(TRAINABLE))
def test_trainable_parameters_of_every_method(name):
    """Counted on the meta device from the model training builds (ESPnet's adapters, --freeze_param)."""
    args = CSASRTask.get_parser().parse_args(["--config", str(methods()[name].config)])
    assert (count_trainable(args, "base")[0], count_trainable(args, "small")[0]) == TRAINABLE[name]


@pytest.mark.parametrize("name", ["lora", "spt4asr", "adapter", "fft"])
def test_built_model_trains_what_its_yaml_says(name, tiny_whisper_path):
    """The backbone frozen (LoRA's own biases too), the method's additions trainable."""
    args = CSASRTask.get_parser().parse_args(
        ["--config", str(methods()[name].config), "--whisper_model", str(tiny_whisper_path)]
    )
    model = build_trainable_model(args)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if name == "fft":
        assert trainable == {n for n, _ in model.named_parameters()}
        return
    backbone = {n for n in trainable if n.startswith(("encoder.encoders.", "decoder.decoders.")) and "lora_" not in n}
    assert trainable and not backbone
    if name == "lora":
        assert all("lora_A" in n or "lora_B" in n for n in trainable)


def test_renamed_methods_name_their_new_yaml():
    """Every renamed method's new name has a YAML, and the old name's error names it."""
    renamed_methods = {old: new for old, new in RENAMED.items() if not old.startswith("--")}
    assert renamed_methods["adapter_stage1"] == "adapter_phase1"
    for old, new in renamed_methods.items():
        assert new in methods() and old not in methods()
        with pytest.raises(ValueError, match=f"method {old} was renamed to {new} "):
            method_config(old)
    assert method_config("adapter_phase1") == CONF / "adapter_phase1.yaml"
    with pytest.raises(ValueError, match="unknown method nosuch"):
        method_config("nosuch")


def test_renamed_options_are_options_of_the_recipe_or_driver():
    """The new name of every renamed option is an option of asr.sh, the driver or the guidance sweep."""
    scripts = ("egs2/TEMPLATE/asr1/asr.sh", "local/run_all_methods.sh", "egs2/cs_bench/asr1/local/sweep_guidance.sh")
    defined = "".join((CONF.parents[1] / script).read_text() for script in scripts)
    for old, new in RENAMED.items():
        if old.startswith("--"):
            assert f"\n{new[2:]}=" in defined and f"\n{old[2:]}=" not in defined, old
