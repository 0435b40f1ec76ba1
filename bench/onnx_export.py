#!/usr/bin/python3
"""onnx_export.py — export a clipadapt safetensors checkpoint's image encoder (and optionally its
text encoder) to ONNX with torch.onnx.export, from bench/torch_clip.py's reference forward pass,
so ONNX Runtime runs the very weights and graph PyTorch does. For make bench only (bench/ort.sh);
not part of clipadapt.

  onnx_export.py image MODEL.safetensors OUT.onnx    input "images" (N,3,R,R) -> "features" (N,E)
  onnx_export.py text  MODEL.safetensors OUT.onnx    input "tokens" (N,77) int64 -> "features" (N,E)

The batch axis is dynamic. OUT is written to OUT.tmp and renamed, so an interrupted export leaves
no file that looks finished.
"""
import os
import warnings
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_clip  # noqa: E402


class _TracedF:
    """torch.nn.functional for the trace. The ONNX tracer turns every .shape into a traced value,
    even a weight's; the two calls of the reference that need Python ints (a conv stride from the
    patch size, layer_norm's normalized shape) get them back here. Everything else passes through."""

    def __getattr__(self, name):
        return getattr(torch.nn.functional, name)

    @staticmethod
    def conv2d(x, w, stride=1, padding=0):
        return torch.nn.functional.conv2d(x, w, stride=int(stride), padding=int(padding))

    @staticmethod
    def layer_norm(x, shape, w, b, eps):
        return torch.nn.functional.layer_norm(x, tuple(int(d) for d in shape), w, b, eps)


class Encoder(torch.nn.Module):
    """The reference functions over the tower's weight dict. The weights stay plain tensors, not
    buffers: the trace then sees their shapes as numbers (layer sizes, patch size), as the
    reference does, and the export stores them as initializers."""

    def __init__(self, W, which):
        super().__init__()
        self.which = which
        self.W = {k: v for k, v in W.items() if k.startswith("visual.") == (which == "image")}

    def forward(self, x):
        if self.which == "image":
            return torch_clip.encode_images(self.W, x)
        return torch_clip.encode_text(self.W, x)


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("image", "text"):
        print(__doc__, file=sys.stderr)
        return 2
    which, src, out = sys.argv[1:4]
    torch.set_grad_enabled(False)
    W = torch_clip.load_st(src)
    enc = Encoder(W, which).eval()
    if which == "image":
        R = torch_clip.image_size(W)
        x, name = torch.randn(2, 3, R, R, generator=torch.Generator().manual_seed(1)), "images"
    else:
        x, name = torch_clip.bench_tokens(2), "tokens"
    torch_clip.F = _TracedF()
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # the int() calls above, meant
    tmp = out + ".tmp"
    torch.onnx.export(enc, (x,), tmp, input_names=[name], output_names=["features"],
                      dynamic_axes={name: {0: "batch"}, "features": {0: "batch"}},
                      opset_version=17, do_constant_folding=True)
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
