"""The Whisper backbone: loading it from every source (:mod:`.loading`), the CTranslate2 and transformers
formats it is read from (:mod:`.ctranslate2_format`, :mod:`.hf_format`), and exporting a trained model
back out to them (:mod:`.export`, imported on its own: it needs transformers and CTranslate2's converter).
"""

from espnet_cs.backbone.loading import (
    EMBEDDED,
    META,
    WHISPER_SIZES,
    WHISPER_TEXT_CTX,
    BackboneIdentity,
    embedded_installed,
    load_whisper,
    one_load_per_backbone,
    whisper_dims,
)

__all__ = [
    "EMBEDDED",
    "META",
    "WHISPER_SIZES",
    "WHISPER_TEXT_CTX",
    "BackboneIdentity",
    "embedded_installed",
    "load_whisper",
    "one_load_per_backbone",
    "whisper_dims",
]
