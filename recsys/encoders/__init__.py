"""Content encoders: raw post content in, float32 (B, D) out.

    text   all-MiniLM-L6-v2, mean-pooled, L2-normalised     (384)
    image  EfficientNet-Lite0 ImageNet, pooled features       (1280)
    video  Lite0 on T sampled frames, concat(mean, motion)    (2560)

`build_encoder(modality, spec)` loads one (spec grammar in `recsys.encoders.base`); models load
lazily there, so importing this package is cheap.
"""

from recsys.encoders.base import (
    DEFAULT_SPECS,
    MODALITIES,
    EncodeOutput,
    Encoder,
    EncoderSpec,
    build_encoder,
    parse_spec,
)

__all__ = ["DEFAULT_SPECS", "MODALITIES", "EncodeOutput", "Encoder", "EncoderSpec", "build_encoder", "parse_spec"]
