"""ESPnet task of espnet-cs: registers the Whisper encoder, decoder, model and the CS tokenizer.

``python -m espnet_cs.bin.train --config conf/tuning/<method>.yaml ...`` runs ESPnet's own
``Trainer`` through :meth:`CSASRTask.main` with all of ESPnet's options (``--resume``,
``--max_epoch``, ``--keep_nbest_models``, ``--freeze_param``, ``--use_adapter``, ...).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import loralib as lora
import numpy as np
import torch
import yaml
from espnet2.asr.decoder.abs_decoder import AbsDecoder
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.layers.create_adapter import create_adapter
from espnet2.optimizers.optim_groups import add_optimizer_hooks
from espnet2.tasks.abs_task import AbsTask, optim_classes
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.class_choices import ClassChoices
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.train.preprocessor import AbsPreprocessor
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import str2bool, str_or_none
from whisper.audio import N_SAMPLES

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.backbone import META, WHISPER_TEXT_CTX, one_load_per_backbone
from espnet_cs.config_yaml import ConfigError, load_yaml_mapping
from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.encoder import CSWhisperEncoder
from espnet_cs.host_memory import allocator_in_use, fix_mmap_threshold
from espnet_cs.methods import FAMILIES
from espnet_cs.model import CSWhisperModel
from espnet_cs.options import check_options
from espnet_cs.renamed import RENAMED_OPTIONS, add_renamed_options, refuse_renamed_training_options, task_tokens_type
from espnet_cs.tokenizer import TASK_TOKEN_LANGUAGES, CSTokenizer
from espnet_cs.trainer import CSTrainer

encoder_choices = ClassChoices(
    "encoder", classes=dict(whisper_cs=CSWhisperEncoder), type_check=AbsEncoder, default="whisper_cs"
)
decoder_choices = ClassChoices(
    "decoder", classes=dict(whisper_cs=CSWhisperDecoder), type_check=AbsDecoder, default="whisper_cs"
)
model_choices = ClassChoices(
    "model", classes=dict(whisper_cs=CSWhisperModel), type_check=AbsESPnetModel, default="whisper_cs"
)


class CSPreprocessor(AbsPreprocessor):
    """Turns transcripts into Whisper token ids and checks each utterance.

    Raises ``ValueError`` naming the utterance for audio over 30 s, an empty transcript, or
    targets that do not fit Whisper's text context.
    """

    def __init__(self, train: bool, tokenizer: CSTokenizer, max_tokens: int) -> None:
        super().__init__(train)
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens

    def __call__(self, uid: str, data: dict[str, Any]) -> dict[str, np.ndarray]:
        if "speech" in data and len(data["speech"]) > N_SAMPLES:
            raise ValueError(
                f"{uid}: audio of {len(data['speech']) / SAMPLE_RATE:.1f} s is longer than Whisper's 30-s window"
            )
        if "text" in data:
            text = data["text"].strip()
            if not text:
                raise ValueError(f"{uid}: empty transcript")
            ids = self.tokenizer.encode_target(text)
            if len(ids) > self.max_tokens:
                raise ValueError(f"{uid}: {len(ids)} target tokens, Whisper's decoder takes at most {self.max_tokens}")
            data["text"] = np.asarray(ids, dtype=np.int64)
        return data


class CSASRTask(AbsTask):
    """Whisper code-switching ASR with soft prompts, LoRA or full fine-tuning."""

    num_optimizers: int = 1
    class_choices_list = [encoder_choices, decoder_choices, model_choices]
    trainer = CSTrainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(description="espnet-cs task related")
        group.add_argument(
            "--whisper_model",
            type=str,
            default="whisper-base",
            help="Whisper backbone: whisper-base (PyPI), an openai-whisper name, a .pt file or a CTranslate2 dir",
        )
        group.add_argument("--whisper_cache_dir", type=str_or_none, default=None, help="cache of converted backbones")
        group.add_argument(
            "--task_tokens",
            type=task_tokens_type,
            default="zh_en",
            choices=sorted(TASK_TOKEN_LANGUAGES),
            help="the decoder's task tokens, by their language tokens: zh = <|zh|>, zh_en = <|zh|><|en|>",
        )
        add_renamed_options(group, RENAMED_OPTIONS)
        group.add_argument(
            "--lr_by_prefix",
            action=NestedDictAction,
            default={},
            help="learning rates of parameter groups, e.g. {encoder.soft_prompts: 1.0e-3}: the trainable "
            "parameters under each prefix form an optimizer group of that lr, the rest keep optim_conf's",
        )
        group.add_argument(
            "--return_freed_memory",
            type=str2bool,
            default=False,
            help="CPU training on glibc's malloc (ESPNET_CS_MALLOC=glibc): hand every freed block of "
            "1 MiB or more back to the system at once (espnet_cs.host_memory); 270-660 MiB less resident "
            "memory per Whisper-base step, 34-52%% more time per step (benchmarks/RESULTS.md)",
        )
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)
        add_method_arguments(parser)

    @classmethod
    def main_worker(cls, args: argparse.Namespace) -> None:
        """ESPnet's training process, with ``--return_freed_memory`` applied first."""
        if args.return_freed_memory and not fix_mmap_threshold():
            logging.warning(
                f"--return_freed_memory true changes nothing: malloc is {allocator_in_use()}'s, not glibc's"
            )
        super().main_worker(args)

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable[[Sequence], dict]:
        return CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> CSPreprocessor:
        # Whisper samples at most half its text context; one of those is <|endoftext|>.
        return CSPreprocessor(train, CSTokenizer(args.task_tokens), WHISPER_TEXT_CTX // 2 - 1)

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> tuple[str, ...]:
        return ("speech",) if inference else ("speech", "text")

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> tuple[str, ...]:
        return ()

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module) -> list[torch.optim.Optimizer]:
        """ESPnet's optimizers, once :func:`freeze` has run again over the adapted model; with
        ``--lr_by_prefix``, ESPnet's optimizer class over :func:`parameter_groups`.

        ESPnet's ``--exclude_weight_decay true`` trains the soft prompt vectors (marked
        ``_no_weight_decay``), and by ``--exclude_weight_decay_conf``'s defaults biases and
        normalization parameters too, with weight decay 0; the rest keep ``optim_conf``'s. Its
        conf is checked against what ESPnet takes.
        """
        freeze(model, args.freeze_param)
        if args.exclude_weight_decay:
            check_options(
                partial(add_optimizer_hooks, model), args.exclude_weight_decay_conf, "exclude_weight_decay_conf"
            )
        if not args.lr_by_prefix:
            return super().build_optimizers(args, model)
        if args.sharded_ddp or args.exclude_weight_decay:
            raise ValueError("--lr_by_prefix does not combine with --sharded_ddp or --exclude_weight_decay")
        optim_class = optim_classes[args.optim]
        return [optim_class(parameter_groups(model, args.lr_by_prefix), **args.optim_conf)]

    @classmethod
    def build_model_from_file(cls, config_file=None, model_file=None, device: str = "cpu"):
        """ESPnet's loading, with LoRA layers that use their loaded weights (see :func:`keep_lora_unmerged`),
        of a config file read strictly first (:func:`espnet_cs.config_yaml.load_yaml`: no repeated key, and no
        renamed option: :mod:`espnet_cs.renamed`)."""
        path = config_file if config_file is not None else Path(model_file).parent / "config.yaml"
        refuse_renamed_training_options(load_yaml_mapping(path), str(path))
        model, args = super().build_model_from_file(config_file, model_file, device)
        keep_lora_unmerged(model)
        return model, args

    @classmethod
    def build_inference_model(cls, config_file: str | Path, model_file: str | Path, device: str = "cpu"):
        """:meth:`build_model_from_file` without the training loss's attention guidance: decoding
        neither uses it nor reads its LID-head file, which a later stage 4 may have rewritten."""
        config = load_yaml_mapping(config_file)
        refuse_renamed_training_options(config, str(config_file))
        if not (config.get("model_conf") or {}).get("guidance"):
            return cls.build_model_from_file(config_file, model_file, device)
        config["model_conf"] = {k: v for k, v in config["model_conf"].items() if k != "guidance"}
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
            return cls.build_model_from_file(Path(tmp) / "config.yaml", model_file, device)

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> CSWhisperModel:
        """The model of ``args``; an error of its options (:class:`ConfigError`), a renamed one
        included (:mod:`espnet_cs.renamed`), names the config file."""
        refuse_renamed_training_options(vars(args), getattr(args, "config", None) or "training options")
        try:
            return cls._build_model(args)
        except ConfigError as e:
            config = getattr(args, "config", None)
            raise ConfigError(f"{config}: {e}" if config else str(e)) from e

    @classmethod
    def _build_model(cls, args: argparse.Namespace) -> CSWhisperModel:
        backbone = dict(whisper_model=args.whisper_model, cache_dir=args.whisper_cache_dir)
        with one_load_per_backbone():  # the encoder and the decoder take their halves of one load
            encoder = _build("encoder", encoder_choices.get_class(args.encoder), {**args.encoder_conf, **backbone})
            tokenizer = CSTokenizer.for_vocab(encoder.backbone_identity.dims["n_vocab"], args.task_tokens)
            decoder = _build(
                "decoder",
                decoder_choices.get_class(args.decoder),
                {
                    **args.decoder_conf,
                    **backbone,
                    "vocab_size": tokenizer.vocab_size,
                    "encoder_output_size": encoder.output_size(),
                },
            )
        return _build(
            "model",
            model_choices.get_class(args.model),
            {**args.model_conf, "encoder": encoder, "decoder": decoder, "task_tokens": args.task_tokens},
        )


def add_method_arguments(parser: argparse.ArgumentParser) -> None:
    """The keys by which a method YAML of ``conf/tuning`` describes itself (:mod:`espnet_cs.methods`).

    Training ignores them; they are options so that ESPnet's config parser accepts the YAML.
    """
    group = parser.add_argument_group(description="what the method is (espnet_cs.methods; training ignores it)")
    group.add_argument("--family", choices=FAMILIES, default=None, help="the kind of parameters that train")
    group.add_argument(
        "--starts_from",
        type=str_or_none,
        default=None,
        help="two-phase training: the method whose trained model this one starts from",
    )
    group.add_argument("--combines", nargs="*", default=[], help="the methods whose parameters this one puts together")
    group.add_argument(
        "--paper_trainable",
        type=float,
        default=None,
        help="trainable parameters the method's paper reports for Whisper-small, in millions",
    )


def build_trainable_model(args: argparse.Namespace) -> CSWhisperModel:
    """The model ``espnet_cs.bin.train`` trains from ``args`` (a method YAML parsed by
    ``CSASRTask.get_parser()``, or a run's ``config.yaml``): built, ESPnet's adapter added
    (``--use_adapter``), the ``--freeze_param`` prefixes frozen by :func:`freeze`."""
    model = CSASRTask.build_model(args)
    if getattr(args, "use_adapter", False):
        create_adapter(model, args.adapter, args.adapter_conf)
    freeze(model, args.freeze_param)
    return model


def count_trainable(args: argparse.Namespace, whisper_name: str) -> tuple[int, int]:
    """(trainable, total) parameters of the model ``args`` configure on Whisper ``whisper_name``
    (e.g. ``base``), built by :func:`build_trainable_model` on PyTorch's meta device from a
    weightless backbone: nothing is loaded or allocated.

    Raises:
        ValueError: ``whisper_name`` is not a Whisper size (e.g. a checkpoint file).
    """
    args = argparse.Namespace(
        **{**vars(args), "model_conf": dict(args.model_conf), "whisper_model": META + whisper_name}
    )
    args.model_conf.pop("guidance", None)  # adds no parameters, and its LID heads may not exist yet
    with torch.device("meta"):
        model = build_trainable_model(args)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def parameter_groups(model: torch.nn.Module, lr_by_prefix: dict[str, float]) -> list[dict[str, Any]]:
    """Optimizer groups of the trainable parameters: one per prefix with its ``lr``, then the rest
    (which keep the optimizer's own lr). A parameter falls under the longest prefix it has.

    Raises:
        ValueError: a prefix names no trainable parameter.
    """
    prefixes = sorted(lr_by_prefix, key=len, reverse=True)
    groups: dict[str | None, list[torch.nn.Parameter]] = {prefix: [] for prefix in prefixes}
    groups[None] = []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            owner = next((p for p in prefixes if name == p or name.startswith(p + ".")), None)
            groups[owner].append(parameter)
    empty = [prefix for prefix in prefixes if not groups[prefix]]
    if empty:
        raise ValueError(f"--lr_by_prefix: no trainable parameter under {empty}")
    rest = [{"params": groups[None]}] if groups[None] else []
    return [{"params": groups[prefix], "lr": float(lr_by_prefix[prefix])} for prefix in lr_by_prefix] + rest


def freeze(model: torch.nn.Module, prefixes: Sequence[str]) -> None:
    """ESPnet's ``--freeze_param``, made to leave the frozen weights exactly as they were with LoRA.

    ESPnet freezes before it adds adapters, and loralib's replacement layers come with trainable
    biases of their own: freeze those too. loralib also merges ``B @ A`` into the frozen weight
    on ``eval()`` and subtracts it on ``train()``, which drifts the weight by rounding at every
    validation: keep LoRA unmerged.
    """
    for name, param in model.named_parameters():
        if "lora_" not in name and any(name == p or name.startswith(p + ".") for p in prefixes):
            param.requires_grad = False
    keep_lora_unmerged(model)


def keep_lora_unmerged(model: torch.nn.Module) -> None:
    """Make loralib apply ``B @ A`` in every forward instead of merging it into the frozen weight.

    ESPnet's ``create_adapter`` puts the model in eval mode while ``B`` is still zero, which marks
    the layers merged: after loading trained LoRA weights they would then be ignored.
    """
    for module in model.modules():
        if isinstance(module, lora.LoRALayer):
            module.merge_weights = module.merged = False  # merged only while B was zero: nothing to undo


def _build(section: str, class_: type, conf: dict[str, Any]) -> Any:
    """``class_(**conf)``, with a clear error for a key the class does not take."""
    check_options(class_, conf, f"{section}_conf of {class_.__name__}")
    return class_(**conf)
