"""Soft prompts for Whisper's encoder and decoder: the one extension point of every prompt method.

The variants compose through :class:`PromptConfig`, so SPT4ASR is a configuration:

* vanilla (``length > 0``): ``length`` learnable vectors enter the stack's first block;
* deep (``deep``): every block gets its own vectors, replacing the previous block's outputs at
  the prompt positions;
* reparameterized (``residual_bottleneck > 0``, :mod:`espnet_cs.prompts.reparameterization`):
  the vectors are used through a small network shared by all vectors and blocks of the stack;
  :meth:`SoftPrompts.fold` bakes it into the vectors for packing;
* language (``language``, decoder only, :mod:`espnet_cs.prompts.language`): a small language
  encoder maps the utterance's detected zh/en distribution to one vector added to every prompt.

Where they go (:meth:`SoftPrompts.enter`): encoder prompts are prepended to the audio frames
after the convolutional front and carry no positional embedding; decoder prompts take Whisper's
previous-text slot, positions ``0..length-1``, and the task tokens follow them. How they start
(:mod:`espnet_cs.prompts.initialization`): as states the backbone already reads as trailing
silence (encoder) or as previous text (decoder: random frequent tokens, or ``init_text``). With
``length == 0`` a stack is exactly Whisper's.
"""

from espnet_cs.prompts.config import PromptConfig
from espnet_cs.prompts.soft_prompts import SoftPrompts

__all__ = ["PromptConfig", "SoftPrompts"]
