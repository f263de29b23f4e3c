"""Whisper's audio encoder as an ESPnet encoder: raw 16-kHz audio in, encoder states out."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import whisper
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from whisper.audio import HOP_LENGTH, N_SAMPLES

from espnet_cs.adapters import ENCODER_SUBLAYERS, AdapterConfig, attach_adapters
from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.backbone import load_whisper
from espnet_cs.blocks import encoder_block_with_unread_prefix, equal_length_groups, run_block
from espnet_cs.prompts import SoftPrompts

# The second convolution has stride 2: an encoder frame is two mel frames.
SAMPLES_PER_ENCODER_FRAME = 2 * HOP_LENGTH


class CSWhisperEncoder(AbsEncoder):
    """Whisper's audio encoder (log-mel front end included) around a loaded backbone.

    Args:
        input_size: unused (raw audio in); kept for ESPnet's encoder signature.
        whisper_model: backbone spec for :func:`espnet_cs.backbone.load_whisper`
            (``whisper-base``, an openai-whisper name, a checkpoint file or a CTranslate2 dir).
        pad_to_30s: pad every utterance to Whisper's 30-s window (as Whisper was trained);
            otherwise to its next whole second (:meth:`padded_samples`).
        cache_dir: where converted backbones are cached.
        soft_prompts: soft prompt options (:class:`espnet_cs.prompts.PromptConfig`); none by default.
            Prompt outputs stay in the encoder states, so the decoder can attend to them.
        adapters: bottleneck adapter options (:class:`espnet_cs.adapters.AdapterConfig`); none by default.
        activation_checkpointing: in training, keep only each block's input and recompute the block
            in the backward pass (``torch.utils.checkpoint``): less memory, the same loss and
            gradients, about one more forward pass of time.
    """

    def __init__(
        self,
        input_size: int = 1,
        whisper_model: str = "whisper-base",
        pad_to_30s: bool = True,
        cache_dir: str | None = None,
        soft_prompts: dict | None = None,
        adapters: dict | None = None,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.activation_checkpointing = activation_checkpointing
        model, self.backbone_identity = load_whisper(whisper_model, cache_dir=cache_dir)
        self.encoders: whisper.model.AudioEncoder = model.encoder
        self.n_mels = model.dims.n_mels
        self.pad_to_30s = pad_to_30s
        self.soft_prompts = SoftPrompts.for_encoder(soft_prompts, self.encoders, self.n_mels)
        adapter_config = AdapterConfig.from_dict(adapters, "encoder adapters", allowed=ENCODER_SUBLAYERS)
        self.adapters = attach_adapters(self.encoders.blocks, adapter_config, model.dims.n_audio_state)

    def output_size(self) -> int:
        return self.encoders.ln_post.normalized_shape[-1]

    def padded_samples(self, samples: int) -> int:
        """The padding policy: the samples an utterance of ``samples`` is padded to, alone or in a batch.

        Whisper's window (30 s) with ``pad_to_30s``; otherwise the utterance's next whole second.
        The width depends on the utterance only, never on its batch mates.
        """
        if self.pad_to_30s:
            return N_SAMPLES
        return min(N_SAMPLES, max(1, math.ceil(samples / SAMPLE_RATE)) * SAMPLE_RATE)

    def log_mel(self, speech: torch.Tensor, speech_lengths: torch.Tensor, width: int) -> torch.Tensor:
        """Whisper's log-mel spectrogram of each utterance, zero-padded as Whisper pads.

        Args:
            speech: (batch, samples) 16-kHz audio, padded with anything.
            speech_lengths: (batch,) valid samples per utterance.
            width: samples every utterance is padded to (a multiple of 320, at most 30 s).
        Returns:
            (batch, n_mels, width / 160)
        """
        mels = [
            # Per utterance: whisper's normalization clamps to (its own maximum - 8).
            whisper.log_mel_spectrogram(F.pad(audio[:n], (0, width - int(n))), self.n_mels)
            for audio, n in zip(speech.float(), speech_lengths)
        ]
        return torch.stack(mels)

    def forward(
        self,
        xs_pad: torch.Tensor,
        ilens: torch.Tensor,
        prev_states: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, None]:
        """Encode audio, each utterance padded by :meth:`padded_samples`.

        Whisper's encoder has no padding mask, so its output depends on how much padding it sees.
        Utterances of equal padded width share a pass; their states are then zero-padded to the
        batch's widest, and ``lengths`` says which are valid. An utterance's states are the same
        alone and in any batch (up to float rounding).

        Args:
            xs_pad: (batch, samples) raw audio.
            ilens: (batch,) valid samples, at most 30 s.
        Returns:
            states (batch, prompts + frames, d_model); lengths (batch,): prompts + frames of
            each utterance's width; None.
        """
        if int(ilens.max()) > N_SAMPLES:
            raise ValueError(f"audio longer than Whisper's 30-s window: {int(ilens.max())} samples")
        widths = torch.tensor([self.padded_samples(int(n)) for n in ilens], device=ilens.device)
        lengths = self.soft_prompts.length + widths // SAMPLES_PER_ENCODER_FRAME
        groups = equal_length_groups(widths)
        states = [self.encode_mel(self.log_mel(xs_pad[rows], ilens[rows], int(widths[rows[0]]))) for rows in groups]
        if len(groups) == 1:
            return states[0], lengths, None
        longest = int(lengths.max())
        states = torch.cat([F.pad(x, (0, 0, 0, longest - x.size(1))) for x in states])
        return states[torch.argsort(torch.cat(groups))], lengths, None

    def encode_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """Whisper's ``AudioEncoder.forward`` for any length up to 30 s, prompts prepended.

        Args:
            mel: (batch, n_mels, frames), frames even and at most 3000; any float dtype and
                device (moved to the encoder's).
        Returns:
            (batch, prompts + frames // 2, d_model) in the encoder's dtype (autocast's under autocast)
        """
        enc = self.encoders
        # log-mel is float32 on the audio's device; Whisper's convolutions would cast their weights to it.
        x = F.gelu(enc.conv1(mel.to(enc.conv1.weight)))
        x = F.gelu(enc.conv2(x)).permute(0, 2, 1)
        x = (x + enc.positional_embedding[: x.size(1)]).to(x.dtype)
        prompts = self.soft_prompts(x.size(0))
        checkpointed = self.activation_checkpointing and self.training
        for i, block in enumerate(enc.blocks):
            x = self.soft_prompts.enter(x, i, prompts)
            unread = self.soft_prompts.unread_outputs(i, len(enc.blocks), kept_in_output=True)
            x = run_block(encoder_block_with_unread_prefix, checkpointed, block, x, unread)
        return enc.ln_post(x)
