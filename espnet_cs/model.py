"""The ESPnet model: Whisper encoder + decoder trained with cross-entropy (plus attention guidance, if configured).

Checkpoints of parameter-efficient runs hold only what trains: frozen backbone tensors
(``requires_grad`` off, e.g. through ESPnet's ``--freeze_param``) are dropped when the state is
saved and taken from the configured backbone when it is loaded, after checking that the
backbone is the one the checkpoint was trained on (``backbone_sha256``).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from espnet.nets.pytorch_backend.nets_utils import th_accuracy
from espnet.nets.pytorch_backend.transformer.label_smoothing_loss import LabelSmoothingLoss
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from espnet_cs.backbone import one_load_per_backbone
from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.encoder import CSWhisperEncoder
from espnet_cs.guidance.loss import AttentionGuidance, GuidanceConfig
from espnet_cs.tokenizer import CSTokenizer, TaskTokens

IGNORE_ID = -1
BACKBONE_PREFIXES = ("encoder.encoders.", "decoder.decoders.")


def sha256_tensor(hex_digest: str) -> torch.Tensor:
    """The 32 bytes of a sha256 as float32: survives ESPnet's checkpoint averaging exactly."""
    return torch.tensor(list(bytes.fromhex(hex_digest)), dtype=torch.float32)


class CSWhisperModel(AbsESPnetModel):
    """Whisper for code-switching ASR.

    Args:
        encoder: Whisper encoder (with its soft prompts and adapters, if any).
        decoder: Whisper decoder (with its soft prompts and adapters, if any).
        task_tokens: decoder task tokens, ``zh`` (``<|zh|>``) or ``zh_en`` (``<|zh|><|en|>``).
        lsm_weight: label smoothing.
        length_normalized_loss: normalize the loss by tokens instead of utterances.
        guidance: attention guidance options (:class:`espnet_cs.guidance.loss.GuidanceConfig`;
            needs ``task_tokens: zh_en``): the loss is cross-entropy + weight * guidance.
    """

    def __init__(
        self,
        encoder: CSWhisperEncoder,
        decoder: CSWhisperDecoder,
        task_tokens: TaskTokens = "zh_en",
        lsm_weight: float = 0.0,
        length_normalized_loss: bool = False,
        guidance: dict | None = None,
    ) -> None:
        super().__init__()
        if encoder.backbone_identity.sha256 != decoder.backbone_identity.sha256:
            raise ValueError("encoder and decoder were loaded from different Whisper backbones")
        self.encoder = encoder
        self.decoder = decoder
        dims = encoder.backbone_identity.dims
        self.tokenizer = CSTokenizer.for_vocab(dims["n_vocab"], task_tokens)
        self.criterion = LabelSmoothingLoss(
            self.tokenizer.vocab_size, IGNORE_ID, lsm_weight, normalize_length=length_normalized_loss
        )
        self.register_buffer("backbone_sha256", sha256_tensor(encoder.backbone_identity.sha256))
        if guidance and decoder.activation_checkpointing:
            raise ValueError(
                "decoder_conf: activation_checkpointing does not combine with attention guidance, whose "
                "captured attention is not recomputed with the blocks; checkpoint the encoder only"
            )
        self.guidance = (
            AttentionGuidance(
                GuidanceConfig.from_dict(guidance),
                self.tokenizer,
                encoder.backbone_identity.sha256,
                dims["n_text_layer"],
                dims["n_text_head"],
            )
            if guidance
            else None
        )
        self.register_state_dict_post_hook(_drop_frozen_backbone)
        self.register_load_state_dict_pre_hook(_restore_frozen_backbone)

    @classmethod
    def from_backbone(
        cls,
        whisper_model: str = "whisper-base",
        task_tokens: TaskTokens = "zh_en",
        pad_to_30s: bool = True,
        cache_dir: str | None = None,
    ) -> CSWhisperModel:
        """The zero-shot backbone: Whisper with the given task tokens and padding, nothing added."""
        with one_load_per_backbone():
            encoder = CSWhisperEncoder(whisper_model=whisper_model, pad_to_30s=pad_to_30s, cache_dir=cache_dir)
            vocab_size = encoder.backbone_identity.dims["n_vocab"]
            decoder = CSWhisperDecoder(
                vocab_size, encoder.output_size(), whisper_model=whisper_model, cache_dir=cache_dir
            )
        return cls(encoder, decoder, task_tokens=task_tokens)

    def teacher_forcing(self, text: torch.Tensor, text_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder inputs and targets.

        Args:
            text: (batch, length) target token ids (no task tokens), padded with -1.
            text_lengths: (batch,)
        Returns:
            inputs (batch, T + length): task tokens + targets, padded with end of text;
            targets (batch, length + 1): targets + end of text, padded with ``IGNORE_ID``,
            aligned with the decoder outputs from the last task token on.
        """
        batch, length = text.shape
        positions = torch.arange(length + 1, device=text.device)[None]
        targets = torch.cat([text, text.new_full((batch, 1), IGNORE_ID)], dim=1)
        targets = targets.masked_fill(positions == text_lengths[:, None], self.tokenizer.eot)
        targets = targets.masked_fill(positions > text_lengths[:, None], IGNORE_ID)
        task = text.new_tensor(self.tokenizer.sot_sequence).expand(batch, -1)
        inputs = torch.cat([task, text.masked_fill(text < 0, self.tokenizer.eot)], dim=1)
        return inputs, targets

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Cross-entropy of the targets given the audio.

        Args:
            speech: (batch, samples) 16-kHz audio; speech_lengths: (batch,)
            text: (batch, length) target token ids padded with -1; text_lengths: (batch,)
        Returns:
            loss, stats (loss, acc), weight (batch size) as ESPnet's trainer expects.
        """
        memory, memory_lengths, _ = self.encoder(speech, speech_lengths)
        inputs, targets = self.teacher_forcing(text, text_lengths)
        with self.guidance.capture(self.decoder) if self.guidance else nullcontext() as captured:
            logits, _ = self.decoder(memory, memory_lengths, inputs, text_lengths + len(self.tokenizer.sot_sequence))
        logits = logits[:, len(self.tokenizer.sot_sequence) - 1 :].contiguous()
        ce = self.criterion(logits, targets)
        acc = th_accuracy(logits.reshape(-1, logits.size(-1)), targets, IGNORE_ID)
        stats = {"loss_ce": ce.detach(), "acc": torch.tensor(acc)}
        loss = ce
        if self.guidance:
            guidance = self.guidance.loss(
                captured, memory_lengths, text, text_lengths, self.decoder.soft_prompts.length
            )
            loss = ce + self.guidance.config.weight * guidance
            stats["loss_guidance"] = guidance.detach()
        stats["loss"] = loss.detach()
        return force_gatherable((loss, stats, torch.tensor(speech.size(0))), loss.device)

    def collect_feats(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, **kwargs: Any
    ) -> dict[str, torch.Tensor]:
        return {"feats": speech, "feats_lengths": speech_lengths}


def _is_backbone(key: str) -> bool:
    return key.startswith(BACKBONE_PREFIXES)


def _drop_frozen_backbone(module: CSWhisperModel, state: dict, prefix: str, local_metadata: Any) -> None:
    """State-dict hook: leave out backbone parameters that do not train, and backbone buffers."""
    trainable = {prefix + name for name, p in module.named_parameters() if p.requires_grad}
    for key in [k for k in state if _is_backbone(k[len(prefix) :]) and k not in trainable]:
        del state[key]


def _restore_frozen_backbone(
    module: CSWhisperModel,
    state: dict,
    prefix: str,
    local_metadata: Any,
    strict: bool,
    missing_keys: list,
    unexpected_keys: list,
    error_msgs: list,
) -> None:
    """Load-state-dict pre-hook: check the backbone identity, then fill in its absent tensors."""
    saved = state.get(prefix + "backbone_sha256")
    if saved is not None and not torch.equal(saved.cpu(), module.backbone_sha256.cpu()):
        trained_on = bytes(saved.round().to(torch.uint8).tolist()).hex()
        raise ValueError(
            f"checkpoint was trained on the Whisper backbone with sha256 {trained_on}, but the "
            f"configured backbone {module.encoder.backbone_identity.spec!r} has sha256 "
            f"{module.encoder.backbone_identity.sha256}"
        )
    for name, tensor in _saved_tensors(module):
        if _is_backbone(name) and prefix + name not in state:
            state[prefix + name] = tensor.detach()


def _saved_tensors(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters and persistent buffers: what ``state_dict`` holds before our hook drops any."""
    tensors = list(module.named_parameters())
    for owner_name, owner in module.named_modules():
        # torch exposes which buffers are persistent only through this attribute.
        for name, buffer in owner.named_buffers(recurse=False):
            if name not in owner._non_persistent_buffers_set:
                tensors.append((f"{owner_name}.{name}".lstrip("."), buffer))
    return tensors
