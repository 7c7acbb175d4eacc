"""Exporting a tokenizer for serving: ``torch.export`` graphs and ONNX files with dynamic sizes.

``ViTok`` traces without graph breaks and without specialising on sizes: padding to whole
patches is written so that symbolic sizes stay exact (:func:`vitok.nn.patch.pad_to_multiple`), so
one exported graph takes any batch, clip length and image size, also sizes that are not multiples
of the patch, as long as the token grid is at least 2 along each axis (H, W > p, T > q; torch.export
assumes sizes of 1 are fixed). Tiling (:mod:`vitok.models.tiling`) is a Python loop over windows and is left out of
exported graphs (``tiled=False``): tile outside the graph, or export at the size you serve.

    from vitok.integrations.graph_export import Reconstructor, dynamic_shapes, export_onnx
    program = torch.export.export(Reconstructor(model), (x,), dynamic_shapes=dynamic_shapes("image"))
    export_onnx(model, "out/onnx")   # encoder.onnx + decoder.onnx, dynamic batch / size
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

Kind = Literal["image", "video"]


class Encoder(nn.Module):
    """``model.encode(x, tiled=False)`` (posterior means) as a module: (B, 3, [T,] H, W) in [-1, 1]
    -> (B, c, [ceil(T/q),] ceil(H/p), ceil(W/p))."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: Tensor) -> Tensor:
        return self.model.encode(pixels, tiled=False)


class Decoder(nn.Module):
    """``model.decode(z, tiled=False)`` as a module: (B, c, [t,] h, w) -> (B, 3, [t*q,] h*p, w*p)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, latent: Tensor) -> Tensor:
        return self.model.decode(latent, tiled=False)


class Reconstructor(nn.Module):
    """Encode + decode (posterior mean), cropped to the input size: (B, 3, [T,] H, W) -> same shape."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: Tensor) -> Tensor:
        return self.model(pixels, tiled=False).recon


def dynamic_shapes(kind: Kind) -> tuple[dict[int, object]]:
    """``torch.export`` dynamic shapes for the single input of :class:`Encoder`, :class:`Decoder` or
    :class:`Reconstructor`: every axis but the channels is dynamic (batch, [time,] height, width)."""
    from torch.export import Dim

    axes = (0, 2, 3, 4) if kind == "video" else (0, 2, 3)
    return ({axis: Dim.AUTO for axis in axes},)


def export_onnx(model: nn.Module, out: str | Path, kind: Kind = "image", opset: int = 18) -> list[Path]:
    """Write ``encoder.onnx`` (input ``pixels``, output ``latent``) and ``decoder.onnx`` (input
    ``latent``, output ``pixels``) into ``out`` with torch's dynamo ONNX exporter; batch, [time,]
    height and width are dynamic. Needs the ``onnx`` and ``onnxscript`` packages.

    Returns the two paths. Raises ``ImportError`` (naming the packages) when they are missing.
    """
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's dependency)
    except ImportError:
        raise ImportError("ONNX export needs `pip install vitok[export]` (onnx, onnxscript, onnxruntime)") from None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = model.config
    q, p, c = config.tubelet_size, config.patch_size, config.latent_channels
    frames = (2 * q,) if kind == "video" else ()
    pixels = torch.rand(2, 3, *frames, 3 * p + 1, 4 * p + 3) * 2 - 1  # not whole patches: exports the padding
    latent = torch.randn(2, c, *((2,) if kind == "video" else ()), 3, 4)
    model = model.float().eval()
    paths = []
    for name, module, example, inputs, outputs in (
            ("encoder", Encoder(model).eval(), pixels, ["pixels"], ["latent"]),
            ("decoder", Decoder(model).eval(), latent, ["latent"], ["pixels"])):
        path = out / f"{name}.onnx"
        with torch.no_grad():
            torch.onnx.export(module, (example,), str(path), input_names=inputs, output_names=outputs,
                              dynamic_shapes=dynamic_shapes(kind), opset_version=opset, dynamo=True,
                              external_data=False)
        paths.append(path)
    return paths
