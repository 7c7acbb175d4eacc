"""Building blocks: RoPE, patchify, attention, norms."""

from __future__ import annotations

import pytest
import torch

from vitok.nn import apply_rope, axial_split, pad_to_multiple, patchify, rope_cos_sin, token_grid, unpatchify
from vitok.nn.attention import Attention


@pytest.mark.parametrize("pairs", [1, 2, 3, 16, 32, 36, 5])
def test_axial_split_is_even_and_complete(pairs: int) -> None:
    split = axial_split(pairs)
    assert sum(split) == pairs
    assert max(split) - min(split) <= 1
    assert split[0] == min(split)  # spare pairs go to y and x, not t


def test_token_grid_order() -> None:
    grid = token_grid(2, 3, 4)
    assert grid.shape == (24, 3)
    assert grid[0].tolist() == [0, 0, 0]
    assert grid[1].tolist() == [0, 0, 1]  # x fastest
    assert grid[4].tolist() == [0, 1, 0]
    assert grid[12].tolist() == [1, 0, 0]


@pytest.mark.parametrize("head_dim", [8, 32, 64, 72, 10])
def test_rope_scores_depend_only_on_relative_position(head_dim: int) -> None:
    coords = torch.randint(0, 20, (12, 3)).float()
    q, k = torch.randn(12, head_dim), torch.randn(12, head_dim)
    cos, sin = rope_cos_sin(coords, head_dim)
    scores = apply_rope(q, cos, sin) @ apply_rope(k, cos, sin).T
    shift = torch.tensor([3.0, -7.0, 11.0])
    cos2, sin2 = rope_cos_sin(coords + shift, head_dim)
    shifted = apply_rope(q, cos2, sin2) @ apply_rope(k, cos2, sin2).T
    torch.testing.assert_close(scores, shifted, atol=1e-4, rtol=1e-4)
    # ... and do depend on position: moving one axis of one token changes its scores
    coords3 = coords.clone()
    coords3[0, 2] += 5
    cos3, sin3 = rope_cos_sin(coords3, head_dim)
    moved = apply_rope(q, cos3, sin3) @ apply_rope(k, cos3, sin3).T
    assert not torch.allclose(scores[0, 1:], moved[0, 1:], atol=1e-3)


def test_rope_is_a_rotation() -> None:
    x = torch.randn(5, 16)
    cos, sin = rope_cos_sin(torch.rand(5, 3) * 10, 16)
    torch.testing.assert_close(apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1))


def test_rope_inference_form_equals_the_differentiable_form() -> None:
    """apply_rope writes into its output without autograd; with autograd it must give the same
    values (and gradients); both equal the textbook rotation of (x_i, x_{i + D/2})."""
    x = torch.randn(2, 3, 7, 16).permute(0, 2, 1, 3)  # non-contiguous, like q / k from the fused qkv
    cos, sin = rope_cos_sin(torch.rand(3, 3) * 10, 16)
    x1, x2 = x.chunk(2, dim=-1)
    textbook = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    with torch.no_grad():
        torch.testing.assert_close(apply_rope(x, cos, sin), textbook)
    leaf = x.clone().requires_grad_()
    out = apply_rope(leaf, cos, sin)
    torch.testing.assert_close(out, textbook)
    out.square().sum().backward()
    torch.testing.assert_close(leaf.grad, 2 * x)  # a rotation: d|Rx|^2/dx = 2x


def test_rope_rejects_odd_head_dim() -> None:
    with pytest.raises(ValueError, match="even"):
        rope_cos_sin(torch.zeros(4, 3), 7)


def test_patchify_roundtrip_and_layout() -> None:
    x = torch.randn(2, 3, 4, 16, 24)
    tokens = patchify(x, 2, 8)
    assert tokens.shape == (2, 2 * 2 * 3, 2 * 8 * 8 * 3)
    torch.testing.assert_close(unpatchify(tokens, (2, 2, 3), 2, 8, 3), x)
    # token 1 is the patch right of token 0 (x fastest), holding pixels [0:2, 0:8, 8:16]
    first = x[0, :, 0:2, 0:8, 8:16].permute(1, 2, 3, 0).reshape(-1)
    torch.testing.assert_close(tokens[0, 1], first)


def test_pad_to_multiple_replicates_edges() -> None:
    x = torch.randn(1, 3, 3, 10, 13)
    padded = pad_to_multiple(x, 2, 8)
    assert padded.shape == (1, 3, 4, 16, 16)
    torch.testing.assert_close(padded[..., :3, :10, :13], x)
    torch.testing.assert_close(padded[..., 3, :10, :13], x[..., 2, :, :])
    assert pad_to_multiple(x[..., :8, :8][:, :, :2], 2, 8).shape == (1, 3, 2, 8, 8)


def test_attention_shapes_and_qk_norm() -> None:
    x = torch.randn(2, 10, 32)
    rope = rope_cos_sin(token_grid(1, 2, 5), 8)
    for qk_norm in (False, True):
        torch.manual_seed(0)
        attn = Attention(32, 4, qk_norm=qk_norm)
        out = attn(x, rope)
        assert out.shape == (2, 10, 32)
        # QK-norm makes attention blind to the scale of q and k: scaling their projections by 10
        # changes the output only without it
        with torch.no_grad():
            attn.qkv.weight[:64] *= 10
        assert torch.allclose(attn(x, rope), out, atol=1e-5) == qk_norm
    assert attn.qkv.bias is None and isinstance(attn.q_norm, torch.nn.RMSNorm)


def test_rope_compiles_for_a_second_input_size() -> None:
    """Fuzz campaign kind (CLI): `vitok reconstruct FOLDER --compile` on images of two sizes ended in
    InductorError "mul expected 2 arguments, got 3": the inference form's ``out=`` multiply does
    not lower once the recompile makes shapes dynamic."""
    compiled = torch.compile(apply_rope)
    with torch.no_grad():
        for n in (6, 10):
            x, cos, sin = torch.randn(1, 2, n, 8), torch.randn(n, 4), torch.randn(n, 4)
            assert torch.allclose(compiled(x, cos, sin), apply_rope(x, cos, sin), atol=1e-6)
