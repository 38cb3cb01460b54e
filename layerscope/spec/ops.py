"""The closed set of functional ops a spec may use, each wrapped as a parameter-free nn.Module, and the
one module torch lacks (ClassToken). Exported files copy these functions and classes as source, so
each is self-contained: torch, F, Tensor, nn, Sequence and Any only.

Wrapping them as modules makes them visible to forward hooks, so `relu`, `flatten` and
`max_pool2d` get rows in the tables exactly like `nn.ReLU` would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def relu(x: Tensor) -> Tensor:
    return F.relu(x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    return F.gelu(x, approximate=approximate)


def silu(x: Tensor) -> Tensor:
    return F.silu(x)


def sigmoid(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


def tanh(x: Tensor) -> Tensor:
    return torch.tanh(x)


def softmax(x: Tensor, dim: int) -> Tensor:
    return F.softmax(x, dim=dim)


def log_softmax(x: Tensor, dim: int) -> Tensor:
    return F.log_softmax(x, dim=dim)


def flatten(x: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    return torch.flatten(x, start_dim, end_dim)


def reshape(x: Tensor, shape: Sequence[int]) -> Tensor:
    return x.reshape(tuple(shape))


def view(x: Tensor, shape: Sequence[int]) -> Tensor:
    return x.view(tuple(shape))


def permute(x: Tensor, dims: Sequence[int]) -> Tensor:
    return x.permute(tuple(dims))


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    return x.transpose(dim0, dim1)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    return x.unsqueeze(dim)


def squeeze(x: Tensor, dim: int | None = None) -> Tensor:
    return x.squeeze() if dim is None else x.squeeze(dim)


def contiguous(x: Tensor) -> Tensor:
    return x.contiguous()


def select(x: Any, index: int) -> Any:
    """Element `index` of a tuple output, e.g. LSTM's `(output, (h, c))`."""
    return x[index]


def getitem(x: Tensor, index: int | Sequence[int], dim: int | None = None) -> Tensor:
    """`x[index]`; with `dim`, element `index` along that dim (`x[:, 0]` is index 0, dim 1)."""
    if dim is not None:
        return x.select(dim, index)  # type: ignore[arg-type]
    return x[tuple(index) if isinstance(index, (list, tuple)) else index]


def positions(x: Tensor, dim: int = 1) -> Tensor:
    """Position ids 0..n-1 for the n entries along `dim`, shaped (1, n): the input to a position Embedding."""
    return torch.arange(x.shape[dim], device=x.device).unsqueeze(0)


def attention(*xs: Tensor, num_heads: int, causal: bool = False) -> Tensor:
    """Multi-head scaled dot-product attention on (batch, sequence, features) tensors.

    Takes q, k and v, or one tensor holding all three side by side (GPT-2's c_attn output).
    k and v narrower than q make grouped-query attention (LLaMA-2-70B): each of their heads,
    of q's head width, serves an equal share of q's heads.
    """
    if len(xs) == 1:
        xs = tuple(xs[0].chunk(3, dim=-1))
    if len(xs) != 3:
        raise ValueError(f"attention takes q, k and v, or one tensor holding all three; got {len(xs)} inputs")
    if xs[0].shape[-1] % num_heads:
        raise ValueError(f"attention: q's {xs[0].shape[-1]} features do not split into {num_heads} heads")
    width = xs[0].shape[-1] // num_heads
    q, k, v = (x.unflatten(-1, (-1, width)).transpose(1, 2) for x in xs)
    if k.shape[1] != num_heads:
        if num_heads % k.shape[1] or k.shape[1] != v.shape[1]:
            raise ValueError(
                f"attention: {num_heads} query heads cannot share {k.shape[1]} key and {v.shape[1]} value heads"
            )
        k, v = (x.repeat_interleave(num_heads // x.shape[1], dim=1) for x in (k, v))
    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return out.transpose(1, 2).flatten(-2)


def scaled_dot_product_attention(*xs: Tensor, causal: bool = False, scale: float | None = None) -> Tensor:
    """torch's F.scaled_dot_product_attention of `from: [q, k, v]`, heads already split: (batch, heads, sequence, width)."""
    if len(xs) != 3:
        raise ValueError(f"scaled_dot_product_attention takes q, k and v; got {len(xs)} inputs")
    return F.scaled_dot_product_attention(xs[0], xs[1], xs[2], is_causal=causal, scale=scale)


def functional_layer_norm(*xs: Tensor, eps: float = 1e-5) -> Tensor:
    """F.layer_norm over the last dim of `from: [x, weight, bias]` (weight and bias optional: `param:` layers)."""
    if not 1 <= len(xs) <= 3:
        raise ValueError(f"functional_layer_norm takes x, and optionally its weight and bias; got {len(xs)} inputs")
    weight, bias = (*xs[1:], None, None)[:2]
    return F.layer_norm(xs[0], (xs[0].shape[-1],), weight, bias, eps)


def expand(x: Tensor, sizes: Sequence[int]) -> Tensor:
    """`x.expand(*sizes)`: a size-1 dim repeated without copying (-1 keeps a dim), e.g. ViT's class token over the batch."""
    return x.expand(*sizes)


def mean(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
    return (
        x.mean() if dim is None else x.mean(dim=tuple(dim) if isinstance(dim, (list, tuple)) else dim, keepdim=keepdim)
    )


def sum(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:  # noqa: A001 - torch's name
    return x.sum() if dim is None else x.sum(dim=tuple(dim) if isinstance(dim, (list, tuple)) else dim, keepdim=keepdim)


def amax(x: Tensor, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
    return (
        x.amax() if dim is None else x.amax(dim=tuple(dim) if isinstance(dim, (list, tuple)) else dim, keepdim=keepdim)
    )


def max_pool2d(
    x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False
) -> Tensor:
    return F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False) -> Tensor:
    return F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode=ceil_mode)


def adaptive_avg_pool2d(x: Tensor, output_size: Any) -> Tensor:
    return F.adaptive_avg_pool2d(x, output_size)


def add(*xs: Tensor, constant: float = 0) -> Tensor:
    """The sum of every input, plus `constant` (`X @ W + 1` is a matmul, then add with constant 1)."""
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out + constant if constant else out


def mul(*xs: Tensor, constant: float = 1) -> Tensor:
    """The product of every input, times `constant`."""
    out = xs[0]
    for x in xs[1:]:
        out = out * x
    return out * constant if constant != 1 else out


def matmul(*xs: Tensor) -> Tensor:
    """`xs[0] @ xs[1] @ ...`, with torch.matmul's broadcasting."""
    if len(xs) < 2:
        raise ValueError(f"matmul multiplies two or more tensors; got {len(xs)}")
    out = xs[0]
    for x in xs[1:]:
        out = torch.matmul(out, x)
    return out


def cat(*xs: Tensor, dim: int = 0) -> Tensor:
    return torch.cat(xs, dim=dim)


FUNCTIONAL_OPS: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        relu, gelu, silu, sigmoid, tanh, softmax, log_softmax,
        flatten, reshape, view, permute, transpose, unsqueeze, squeeze, contiguous,
        select, getitem, mean, sum, amax, max_pool2d, avg_pool2d, adaptive_avg_pool2d,
        add, mul, matmul, cat, positions, attention,
        scaled_dot_product_attention, functional_layer_norm, expand,
    )
}  # fmt: skip
MULTI_INPUT_OPS = frozenset(
    {"add", "mul", "matmul", "cat", "attention", "scaled_dot_product_attention", "functional_layer_norm"}
)  # take every tensor named in `from:`


class FunctionalOp(nn.Module):
    """A functional op with its keyword arguments bound, shown under the op's own name."""

    functional = True  # a function call in Python: its output is not a layer's activation (run/trace.py)

    def __init__(self, op: str, **kwargs: Any):
        super().__init__()
        self.op = op
        self.kwargs = kwargs
        self._fn = FUNCTIONAL_OPS[op]

    def forward(self, *xs: Any) -> Any:
        return self._fn(*xs, **self.kwargs)

    def _get_name(self) -> str:
        return self.op

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())


class ClassToken(nn.Module):
    """A learned token put in front of the sequence (dim 1): ViT's class token.

    torch.nn has no layer that holds a bare parameter; this is layerscope's one addition.
    """

    def __init__(self, embed_dim: int):
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, embed_dim))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)


def free_tensor(shape: Sequence[int], init: str, seed: int = 0, dtype: Any = None) -> Tensor:
    """A spec's `param:` or `buffer:` value on the default device: zeros, ones, or uniform [0, 1) or
    normal N(0, 1) draws from a generator of its own seeded with `seed`, so a spec means one set of
    values and torch's global RNG is left alone. On meta, shape only."""
    like = torch.empty(0, dtype=dtype)  # the default device and dtype in force
    if like.is_meta or init in ("zeros", "ones"):
        return torch.full(tuple(shape), float(init == "ones"), dtype=like.dtype, device=like.device)
    generator = torch.Generator().manual_seed(seed)
    draw = torch.rand if init == "uniform" else torch.randn
    return draw(tuple(shape), generator=generator, device="cpu").to(like)


LAYERSCOPE_MODULES: dict[str, type[nn.Module]] = {"ClassToken": ClassToken}
