"""Pack a trained model into a zip without the backbone, and build it back from one.

The zip is written by ESPnet's own :func:`espnet2.main_funcs.pack_funcs.pack` and read by its
``unpack`` (which ``espnet_model_zoo.downloader.ModelDownloader.unpack_local_file`` also uses).
Its members, for ``exp_dir = exp/<name>``::

    meta.yaml                    ESPnet's index: {files, yaml_files, timestamp, versions}
    exp/<name>/config.yaml       the training config; prompt reparameterizations folded; the LID heads'
                                 path points inside the zip (unpacking rewrites it to the output dir)
    exp/<name>/<model file>      the trainable tensors only, and ``backbone_sha256``
    exp/<name>/backbone.json     the frozen Whisper backbone: {spec, sha256, dims}
    exp/<name>/<lid heads>.json  stage 4's LID heads, if the config's guidance uses them

The backbone's weights are not in the zip: the public Whisper is resolved from its spec as
:func:`espnet_cs.backbone.load_whisper` resolves it, and must have the recorded sha256.
Prompt reparameterizations are folded (:meth:`espnet_cs.prompts.SoftPrompts.fold`): the zip holds
the vectors the residual MLP computes and the config says ``residual_bottleneck: 0`` (with
``residual_start`` at its default), so the unpacked model has no MLP and computes exactly what the
trained one computed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import zipfile
import zlib
from contextlib import chdir
from dataclasses import asdict
from pathlib import Path

import torch
import yaml
from espnet2.main_funcs.pack_funcs import pack, unpack
from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

from espnet_cs.backbone import load_whisper
from espnet_cs.config_yaml import ConfigError, load_yaml
from espnet_cs.model import CSWhisperModel
from espnet_cs.prompts.reparameterization import REPARAMETERIZATIONS, options_of
from espnet_cs.task import CSASRTask, freeze

logger = logging.getLogger(__name__)

# Keys of ESPnet's meta.yaml: the keyword arguments of espnet_cs.api.Speech2Text.from_files.
CONFIG_KEY = "asr_train_config"
MODEL_KEY = "asr_model_file"
BACKBONE_KEY = "backbone_identity_file"


class BackboneError(RuntimeError):
    """A packed model's backbone cannot be loaded, or is not the one the model was trained on."""


def pack_model(exp_dir: str | Path, model_file: str, out: str | Path, lid_heads: str | Path | None = None) -> Path:
    """Pack ``exp_dir/model_file`` with its config, LID heads and backbone identity into ``out``.

    Args:
        exp_dir: training output dir (``config.yaml`` and the checkpoints).
        model_file: checkpoint name inside ``exp_dir``, e.g. ``valid.loss.ave.pth``.
        out: the zip to write (replaced atomically).
        lid_heads: the LID-head file, if not where the config's guidance says it is.
    Returns:
        ``out``.
    Raises:
        FileNotFoundError: config, checkpoint or LID-head file missing.
        ValueError: the checkpoint does not hold exactly the trainable tensors of the config's
            model, or was trained on another backbone than the configured one.
    """
    exp_dir, out = Path(exp_dir), Path(out).resolve()
    config_path, model_path = exp_dir / "config.yaml", exp_dir / model_file
    for path, missing in (
        (config_path, "has training run (stage 5)?"),
        (model_path, "have training and averaging run (stages 5-7)?"),
    ):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: {missing}")
    config = load_yaml(config_path)
    heads = _lid_heads_file(config, lid_heads)
    name = f"exp/{exp_dir.resolve().name}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".pack.") as tmp:
        staging = Path(tmp).resolve()
        (staging / name).mkdir(parents=True)
        packed_config = staging / name / "config.yaml"
        if heads is not None:
            config["model_conf"]["guidance"]["lid_heads"] = str(heads.resolve())
        _write_yaml(packed_config, config)  # built from here (the working directory resolves the backbone spec)
        model, args = CSASRTask.build_model_from_file(packed_config, model_path)
        state = _trainable_state(model, args.freeze_param, torch.load(model_path, map_location="cpu"), model_path)
        torch.save(state, staging / name / model_path.name)

        identity = asdict(model.encoder.backbone_identity)  # {spec, sha256, dims}
        (staging / name / "backbone.json").write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")
        option = []
        if heads is not None:
            member = f"{name}/{heads.name}"
            shutil.copyfile(heads, staging / member)
            config["model_conf"]["guidance"]["lid_heads"] = member
            option.append(member)
        _write_yaml(packed_config, _folded_config(config, model))
        with chdir(staging):  # pack names members by their paths relative to it
            pack(
                files={MODEL_KEY: f"{name}/{model_path.name}", BACKBONE_KEY: f"{name}/backbone.json"},
                yaml_files={CONFIG_KEY: f"{name}/config.yaml"},
                option=option,
                outpath=out.name,
            )
        os.replace(staging / out.name, out)
    logger.info(
        "packed %s (%d tensors, %d values) -> %s (%d bytes)",
        model_path,
        len(state),
        sum(t.numel() for t in state.values()),
        out,
        out.stat().st_size,
    )
    return out


def _lid_heads_file(config: dict, override: str | Path | None) -> Path | None:
    """The LID-head file the config's guidance reads (``override`` if given), checked to exist."""
    guidance = (config.get("model_conf") or {}).get("guidance")
    if guidance is None:
        if override is not None:
            raise ValueError(f"--lid_heads {override}: the model is not trained with attention guidance")
        return None
    path = Path(override or guidance["lid_heads"])
    if not path.is_file():
        raise FileNotFoundError(f"LID heads {path} do not exist: give their location with --lid_heads")
    return path


def _trainable_state(
    model: CSWhisperModel, freeze_param: list[str], saved: dict[str, torch.Tensor], source: Path
) -> dict[str, torch.Tensor]:
    """The state to pack: what trains, with prompt reparameterizations folded.

    ``saved`` (the checkpoint, loaded into ``model``) must hold exactly the tensors that train
    under ``freeze_param``, and ``backbone_sha256``.
    """
    freeze(model, freeze_param)
    expected = {n for n, p in model.named_parameters() if p.requires_grad} | {"backbone_sha256"}
    frozen, missing = sorted(set(saved) - expected), sorted(expected - set(saved))
    if frozen or missing:
        raise ValueError(
            f"{source} is not a trainable-only checkpoint of this config: "
            f"{len(frozen)} frozen or unknown tensors {frozen[:3]}, {len(missing)} trainable ones missing {missing[:3]}"
        )
    for stack in (model.encoder, model.decoder):
        stack.soft_prompts.fold()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}  # the model's hook drops the frozen backbone


def _folded_config(config: dict, model: CSWhisperModel) -> dict:
    """``config`` with the prompt settings of ``model``'s (folded) prompts."""
    for section, stack in (("encoder_conf", model.encoder), ("decoder_conf", model.decoder)):
        conf = (config.get(section) or {}).get("soft_prompts")
        for key in REPARAMETERIZATIONS if conf else ():
            conf[key] = getattr(stack.soft_prompts.config, key)
            for option in options_of(key):
                if option in conf:  # back at its default, as the folded prompts have no reparameterization
                    conf[option] = getattr(stack.soft_prompts.config, option)
    return config


def load_packed(
    files: dict[str, str], whisper_model: str | None = None, cache_dir: str | None = None, device: str = "cpu"
) -> CSWhisperModel:
    """Build an unpacked model, after checking its backbone.

    Args:
        files: ``{asr_train_config, asr_model_file, backbone_identity_file}`` paths, as ESPnet's
            ``unpack`` (or :func:`unpacked_files`) returns them.
        whisper_model: backbone spec to use instead of the packed one (e.g. a local copy of the
            checkpoint); it must have the packed sha256.
        cache_dir: cache of converted backbones (default: the packed config's, else the usual one).
        device: where to put the model.
    Raises:
        BackboneError: the backbone cannot be loaded or has another sha256.
    """
    config = load_yaml(files[CONFIG_KEY])
    config["whisper_model"] = whisper_model or config["whisper_model"]
    config["whisper_cache_dir"] = cache_dir or config.get("whisper_cache_dir")
    check_backbone(_backbone_identity(Path(files[BACKBONE_KEY])), config["whisper_model"], config["whisper_cache_dir"])
    with tempfile.TemporaryDirectory() as tmp:
        _write_yaml(Path(tmp) / "config.yaml", config)
        model, _ = CSASRTask.build_model_from_file(Path(tmp) / "config.yaml", files[MODEL_KEY], device)
    return model.eval()


def _backbone_identity(path: Path) -> dict:
    """The backbone identity a packed model records (``{spec, sha256, dims}``), checked to be one."""
    try:
        identity = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not the backbone identity of a packed model ({e}): pack it again (stage 12)") from e
    if not isinstance(identity, dict) or not {"spec", "sha256", "dims"} <= identity.keys():
        raise ValueError(
            f"{path}: not the backbone identity of a packed model (keys spec, sha256, dims): pack it again"
        )
    return identity


def check_backbone(identity: dict, spec: str, cache_dir: str | None = None) -> None:
    """Raise :class:`BackboneError` unless ``spec`` loads the backbone of ``identity`` ({spec, sha256, dims})."""
    wanted = f"the Whisper backbone {identity['spec']!r} (sha256 {identity['sha256']}, dims {identity['dims']})"
    try:
        _, loaded = load_whisper(spec, cache_dir=cache_dir)
    except (OSError, ValueError, ModuleNotFoundError) as e:
        raise BackboneError(
            f"the packed model needs {wanted}; it is not in the zip and {spec!r} cannot be "
            f"loaded ({e}). Pass whisper_model= a local copy of it."
        ) from e
    if loaded.sha256 != identity["sha256"]:
        raise BackboneError(f"the packed model needs {wanted}, but {spec!r} has sha256 {loaded.sha256}")


PACKED_BY = "stage 12 (python -m espnet_cs.bin.pack)"


def unpack_zip(path: str | Path, out: str | Path) -> dict[str, str]:
    """Extract the packed model ``path`` (a zip :func:`pack_model` wrote) into ``out``; ``{key: path}`` of its files.

    Raises:
        ValueError: ``path`` is not a zip, is cut short or damaged, or is not a packed model.
        FileNotFoundError: it lacks one of the files a packed model has.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a zip file (or is cut short): expected a packed model zip written by {PACKED_BY}"
        )
    if path.suffix != ".zip":
        raise ValueError(f"{path}: a packed model's file name ends in .zip, as {PACKED_BY} writes it")
    try:
        files = unpack(path, out)
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, KeyError, AssertionError, yaml.YAMLError) as e:
        raise ValueError(
            f"{path} is a damaged zip or not a packed model ({e!r}): expected a zip written by {PACKED_BY}"
        ) from e
    return _checked_files(files, path)


def unpacked_files(directory: str | Path) -> dict[str, str]:
    """``{key: path}`` of the files in a directory ESPnet's ``unpack`` wrote, from its ``meta.yaml``.

    Raises:
        FileNotFoundError: ``meta.yaml`` or a file of a packed model missing.
        ValueError: ``meta.yaml`` is not ESPnet's index of a packed model.
    """
    meta = Path(directory) / "meta.yaml"
    if not meta.is_file():
        raise FileNotFoundError(
            f"{meta} does not exist: {directory} is not an unpacked model (of a zip written by {PACKED_BY})"
        )
    try:
        index = load_yaml(meta)
        listed = {**index["yaml_files"], **index["files"]}
    except (ConfigError, UnicodeDecodeError, TypeError, KeyError) as e:
        raise ValueError(
            f"{meta} is not the index of a packed model ({e!r}): expected ESPnet's meta.yaml with "
            f"yaml_files and files, as unpacking a zip written by {PACKED_BY} leaves it"
        ) from e
    return _checked_files({key: str(Path(directory) / path) for key, path in listed.items()}, Path(directory))


def _checked_files(files: dict[str, str], source: Path) -> dict[str, str]:
    """``files``, after checking that they hold the three files of a packed model and these exist."""
    for key in (CONFIG_KEY, MODEL_KEY, BACKBONE_KEY):
        if key not in files:
            raise FileNotFoundError(f"{source}: no {key} in its meta.yaml: not a packed model written by {PACKED_BY}")
        if not Path(files[key]).is_file():
            raise FileNotFoundError(
                f"{source}: its {key} {files[key]} does not exist: expected the files of a packed model written by {PACKED_BY}"
            )
    return files


def _write_yaml(path: Path, data: dict) -> None:
    path.write_text(yaml_no_alias_safe_dump(data, indent=4, sort_keys=False), encoding="utf-8")
