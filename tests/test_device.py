"""--device of the model-running tools (espnet_cs.device) and asr.sh's --gpu_inference, on a CPU."""

from __future__ import annotations

import pytest
import torch
from recipe_tools import recipe_copy, run_recipe

from espnet_cs.bin import decode
from espnet_cs.device import checked_device


def test_device_names():
    assert checked_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="'meta': only cpu and cuda"):
        checked_device("meta")
    with pytest.raises(ValueError, match="'gpu0': not a device name"):
        checked_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="--device cuda: no CUDA device is visible here"):
        checked_device("cuda")
    with pytest.raises(SystemExit, match="decode.py: --device cuda:1: no CUDA device"):
        decode.main(["--data_dir", str(tmp_path), "--out_dir", str(tmp_path / "out"), "--device", "cuda:1"])


def test_gpu_inference_takes_true_or_false(tmp_path):
    result = run_recipe(recipe_copy(tmp_path / "recipe"), "--stage", "3", "--stop_stage", "3", "--gpu_inference", "yes")
    assert result.returncode != 0 and "option --gpu_inference takes true or false, got 'yes'" in result.stderr
