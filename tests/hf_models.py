"""Hugging Face transformers models from small configs, random init, nothing downloaded: each a
factory and the keyword inputs of its forward (tests/test_transformers.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

transformers = __import__("pytest").importorskip("transformers")
T: Any = transformers

TEXT = {"vocab_size": 100, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}


def ids(batch: int = 2, length: int = 16) -> torch.Tensor:
    return torch.randint(3, 100, (batch, length), generator=torch.Generator().manual_seed(length))


def ones(batch: int = 2, length: int = 16) -> torch.Tensor:
    return torch.ones(batch, length, dtype=torch.long)


def _model(cls: Any, config: Any, **settings: Any) -> Callable[[], torch.nn.Module]:
    def make() -> torch.nn.Module:
        torch.manual_seed(0)
        return cls(config(**settings))

    return make


ENCODER = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
SEQ2SEQ = {"d_model": 32, "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2}
SEQ2SEQ |= {"decoder_attention_heads": 2, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64}

MODELS: dict[str, tuple[Callable[[], torch.nn.Module], Callable[[], dict[str, torch.Tensor]]]] = {
    "bert": (
        _model(T.BertModel, T.BertConfig, **TEXT, **ENCODER, max_position_embeddings=64),
        lambda: {"input_ids": ids(), "attention_mask": ones(), "token_type_ids": torch.zeros(2, 16, dtype=torch.long)},
    ),
    "distilbert": (
        _model(T.DistilBertModel, T.DistilBertConfig, **TEXT, dim=32, n_layers=2, n_heads=2, hidden_dim=64),
        lambda: {"input_ids": ids(), "attention_mask": ones()},
    ),
    "roberta": (
        _model(T.RobertaModel, T.RobertaConfig, **TEXT, **ENCODER, max_position_embeddings=64),
        lambda: {"input_ids": ids()},
    ),
    "albert": (
        _model(T.AlbertModel, T.AlbertConfig, **TEXT, **ENCODER, embedding_size=16, max_position_embeddings=64),
        lambda: {"input_ids": ids()},
    ),
    "gpt2": (
        _model(T.GPT2LMHeadModel, T.GPT2Config, **TEXT, n_embd=32, n_layer=2, n_head=2, n_positions=64),
        lambda: {"input_ids": ids()},
    ),
    "llama": (
        _model(
            T.LlamaForCausalLM,
            T.LlamaConfig,
            **TEXT,
            **ENCODER,
            num_key_value_heads=1,
            max_position_embeddings=64,
        ),
        lambda: {"input_ids": ids(), "attention_mask": ones()},
    ),
    "t5": (
        _model(T.T5Model, T.T5Config, **TEXT, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2),
        lambda: {
            "input_ids": ids(),
            "attention_mask": ones(),
            "decoder_input_ids": ids(length=8),
            "decoder_attention_mask": ones(length=8),
        },
    ),
    "bart": (
        _model(T.BartModel, T.BartConfig, **TEXT, **SEQ2SEQ, max_position_embeddings=64),
        lambda: {"input_ids": ids(), "attention_mask": ones()},
    ),
    "vit": (
        _model(T.ViTModel, T.ViTConfig, **ENCODER, image_size=32, patch_size=8),
        lambda: {"pixel_values": torch.randn(2, 3, 32, 32)},
    ),
    "swin": (
        _model(
            T.SwinModel,
            T.SwinConfig,
            image_size=32,
            patch_size=4,
            embed_dim=16,
            depths=[1, 1],
            num_heads=[2, 2],
            window_size=4,
        ),
        lambda: {"pixel_values": torch.randn(2, 3, 32, 32)},
    ),
    "whisper": (
        _model(
            T.WhisperModel,
            T.WhisperConfig,
            **TEXT,
            **SEQ2SEQ,
            decoder_start_token_id=1,
            num_mel_bins=16,
            max_source_positions=20,
            max_target_positions=20,
        ),
        lambda: {"input_features": torch.randn(2, 16, 40), "decoder_input_ids": ids(length=5)},
    ),
    "wav2vec2": (
        _model(
            T.Wav2Vec2Model,
            T.Wav2Vec2Config,
            **ENCODER,
            conv_dim=(16, 16),
            conv_stride=(5, 2),
            conv_kernel=(10, 3),
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
        ),
        lambda: {"input_values": torch.randn(2, 400)},
    ),
}
