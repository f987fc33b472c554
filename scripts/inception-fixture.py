#!/usr/bin/env python3
"""
Reference outputs for packages/core/test/inception.test.ts: pytorch-fid's FID Inception-v3 (the network behind
published FIDs) with weights defined by a formula instead of the 95 MB release file, so CI can check the TF.js
port (packages/core/src/eval/inception.ts) without downloading anything.

    /usr/bin/python3 scripts/inception-fixture.py          # Debian's python3 with python3-torch (1.13)

Writes packages/core/test/fixtures/inception/:
  features.json   the formula, the input images (also a formula) and the expected pool3 features (2048-d) plus
                  the spatial means of the earlier blocks' outputs (64, 192, 768-d) to localise a mismatch
  stem.pth        a torch.save zip of the Conv2d_1a_3x3 state (real key names, formula values, an int64
                  num_batches_tracked) to prove the loader reads torch's own format

The network: pytorch-fid `fid_inception_v3()` = torchvision Inception3(num_classes=1008, aux_logits=False)
with Mixed_5b-d = FIDInceptionA, Mixed_6b-e = FIDInceptionC (both: 3x3 avg pool, stride 1, padding 1,
count_include_pad=False), Mixed_7b = FIDInceptionE_1 (same avg pool), Mixed_7c = FIDInceptionE_2 (3x3 max pool
instead); BasicConv2d = Conv2d(bias=False) + BatchNorm2d(eps=0.001) + ReLU; features = adaptive average pool
of Mixed_7c. Input as pytorch-fid's InceptionV3(resize_input=True, normalize_input=True): bilinear resize to
299x299 (align_corners=False), then 2x - 1.

The modules below are written here so the script runs without torchvision. When torchvision is installed the
script also builds the network from torchvision's Inception3 blocks, loads the same state dict into it with
strict=True (same key names and shapes) and checks both give the same features.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "packages", "core", "test", "fixtures", "inception")

# ---------------------------------------------------------------- formula weights (mirrored in inception.test.ts)

M32 = 0xFFFFFFFF


def name_seed(name):
    """Σ (i+1)·charCode(name[i]) mod 2^32: distinct for every parameter name of the network."""
    s = 0
    for i, ch in enumerate(name):
        s = (s + (i + 1) * ord(ch)) & M32
    return s


def unit(name, n):
    """u_k in [0, 1) for k = 0..n-1: murmur3's fmix32 of (k + seed·0x9E3779B9) mod 2^32, divided by 2^32.
    Integer arithmetic only, so Python and JavaScript (Math.imul) produce bit-identical values."""
    h = (np.arange(n, dtype=np.uint64) + np.uint64((name_seed(name) * 0x9E3779B9) & M32)) & np.uint64(M32)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & np.uint64(M32)
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & np.uint64(M32)
    h ^= h >> np.uint64(16)
    return h.astype(np.float64) / 4294967296.0


def formula(name, shape):
    """Value of every element (row-major, PyTorch layout), computed in float64 and rounded to float32 once.
    Convs are He-uniform (variance 2/fan_in) and BN statistics are near identity, which keeps activations O(1)
    through all 94 conv layers while still exercising the BN fold."""
    n = int(np.prod(shape))
    u = unit(name, n)
    if name.endswith("conv.weight"):
        fan_in = int(np.prod(shape[1:]))
        v = (2 * u - 1) * math.sqrt(6 / fan_in)
    elif name.endswith("bn.weight"):
        v = 0.8 + 0.4 * u
    elif name.endswith("bn.bias"):
        v = 0.2 * u - 0.1
    elif name.endswith("bn.running_mean"):
        v = 0.2 * u - 0.1
    elif name.endswith("bn.running_var"):
        v = 0.8 + 0.4 * u
    elif name == "fc.weight":
        v = (2 * u - 1) * math.sqrt(3 / shape[1])
    elif name == "fc.bias":
        v = np.zeros(n)
    else:
        raise ValueError(name)
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def formula_state_dict(model):
    sd = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(0, dtype=torch.int64)
        else:
            sd[k] = formula(k, tuple(v.shape))
    return sd


# ---------------------------------------------------------------- input images (mirrored in inception.test.ts)

IMAGES = [(32, 32), (64, 48), (331, 307)]  # (width, height): upsampled, upsampled non-square, downsampled


def image(i, w, h):
    """8-bit RGB pattern, as a float in [0, 1]: v = (3x² + 5y² + (c+1)·x·y + 17c + 41i) mod 256."""
    y, x = np.meshgrid(np.arange(h, dtype=np.int64), np.arange(w, dtype=np.int64), indexing="ij")
    chans = [((3 * x * x + 5 * y * y + (c + 1) * x * y + 17 * c + 41 * i) % 256) for c in range(3)]
    return torch.from_numpy(np.stack(chans)[None].astype(np.float32) / np.float32(255))  # [1, 3, h, w]


# ---------------------------------------------------------------- the network, without torchvision


class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avg3(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def max3(x):
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class BlockA(nn.Module):  # FIDInceptionA
    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(avg3(x))
        return torch.cat([a, b, c, d], 1)


class BlockB(nn.Module):  # InceptionB (Mixed_6a)
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([a, b, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class BlockC(nn.Module):  # FIDInceptionC
    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = x
        for i in range(1, 6):
            c = getattr(self, f"branch7x7dbl_{i}")(c)
        d = self.branch_pool(avg3(x))
        return torch.cat([a, b, c, d], 1)


class BlockD(nn.Module):  # InceptionD (Mixed_7a)
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = x
        for i in range(1, 5):
            b = getattr(self, f"branch7x7x3_{i}")(b)
        return torch.cat([a, b, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class BlockE(nn.Module):  # FIDInceptionE_1 (pool=avg3) and FIDInceptionE_2 (pool=max3)
    def __init__(self, cin, pool):
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], 1)
        d = self.branch_pool(self.pool(x))
        return torch.cat([a, b, c, d], 1)


class FIDInceptionV3(nn.Module):
    """Same attribute names as torchvision's Inception3, so the state dict keys are those of the release file."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = BlockA(192, 32)
        self.Mixed_5c = BlockA(256, 64)
        self.Mixed_5d = BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b = BlockC(768, 128)
        self.Mixed_6c = BlockC(768, 160)
        self.Mixed_6d = BlockC(768, 160)
        self.Mixed_6e = BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b = BlockE(1280, avg3)
        self.Mixed_7c = BlockE(2048, max3)
        self.fc = nn.Linear(2048, 1008)


def torchvision_model():
    """The same network from torchvision's own blocks, patched the way pytorch-fid's fid_inception_v3() does."""
    try:
        from torchvision.models import inception as tv
    except ImportError:
        return None

    def patched(base, pool):
        class Patched(base):
            def forward(self, x):
                outs = base._forward(self, x)
                # torchvision's last output is branch_pool(avg_pool2d(x, 3, 1, 1)); redo it the FID way.
                outs[-1] = self.branch_pool(pool(x))
                return torch.cat(outs, 1)

        return Patched

    m = tv.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    A, C, E1, E2 = patched(tv.InceptionA, avg3), patched(tv.InceptionC, avg3), patched(tv.InceptionE, avg3), patched(tv.InceptionE, max3)
    m.Mixed_5b, m.Mixed_5c, m.Mixed_5d = A(192, pool_features=32), A(256, pool_features=64), A(288, pool_features=64)
    m.Mixed_6b, m.Mixed_6c, m.Mixed_6d, m.Mixed_6e = (C(768, channels_7x7=c) for c in (128, 160, 160, 192))
    m.Mixed_7b, m.Mixed_7c = E1(1280), E2(2048)
    return m


def forward(net, x):
    """pytorch-fid's InceptionV3(resize_input=True, normalize_input=True) forward, every block's output kept."""
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    x = 2 * x - 1
    x = net.Conv2d_2b_3x3(net.Conv2d_2a_3x3(net.Conv2d_1a_3x3(x)))
    b0 = F.max_pool2d(x, kernel_size=3, stride=2)
    b1 = F.max_pool2d(net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(b0)), kernel_size=3, stride=2)
    x = b1
    for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        x = getattr(net, name)(x)
    b2 = x
    for name in ("Mixed_7a", "Mixed_7b", "Mixed_7c"):
        x = getattr(net, name)(x)
    pool3 = F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)
    mean = lambda t: t.mean(dim=(2, 3))
    return {"block0_mean": mean(b0), "block1_mean": mean(b1), "block2_mean": mean(b2), "pool3": pool3}


def main():
    torch.set_grad_enabled(False)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    net = FIDInceptionV3().eval()
    sd = formula_state_dict(net)
    net.load_state_dict(sd, strict=True)
    n_params = sum(v.numel() for k, v in sd.items() if not k.endswith("num_batches_tracked"))
    print(f"{len(sd)} state dict entries, {n_params} values", file=sys.stderr)

    outs = [forward(net, image(i, w, h)) for i, (w, h) in enumerate(IMAGES)]

    tv = torchvision_model()
    if tv is not None:
        tv.eval().load_state_dict(sd, strict=True)
        for i, (w, h) in enumerate(IMAGES):
            ref = forward(tv, image(i, w, h))
            for k, v in ref.items():
                d = (v - outs[i][k]).abs().max().item()
                assert d == 0 or d < 1e-5 * v.abs().max().item(), f"torchvision and the local modules differ on image {i} {k}: {d}"
        print("torchvision's Inception3 with the FID patches gives the same features", file=sys.stderr)
    else:
        print("torchvision is not installed: not cross-checked against its Inception3", file=sys.stderr)

    # Non-degenerate: features of O(1) magnitude, most of them non-zero, clearly different between the images.
    f = torch.cat([o["pool3"] for o in outs])
    for i in range(len(IMAGES)):
        print(f"image {i}: pool3 mean {f[i].mean():.4f} std {f[i].std():.4f} max {f[i].max():.4f} nonzero {(f[i] > 0).float().mean():.3f}", file=sys.stderr)
    for i in range(len(IMAGES)):
        for j in range(i + 1, len(IMAGES)):
            print(f"images {i},{j}: relative L2 distance {((f[i] - f[j]).norm() / f[i].norm()).item():.4f}", file=sys.stderr)
    assert (f > 0).float().mean() > 0.5 and f.std() > 0.01

    os.makedirs(OUT, exist_ok=True)
    g = lambda t: [float(f"{v:.9g}") for v in t.flatten().tolist()]
    fixture = {
        "about": "scripts/inception-fixture.py: pytorch-fid FID Inception-v3 with formula weights; see that script",
        "torch": torch.__version__,
        "cross_checked_with_torchvision": tv is not None,
        "images": [
            {"width": w, "height": h, "block0_mean": g(o["block0_mean"]), "block1_mean": g(o["block1_mean"]), "block2_mean": g(o["block2_mean"]), "pool3": g(o["pool3"])}
            for (w, h), o in zip(IMAGES, outs)
        ],
    }
    with open(os.path.join(OUT, "features.json"), "w") as fh:
        json.dump(fixture, fh, separators=(",", ":"))
        fh.write("\n")

    stem = {k: v for k, v in sd.items() if k.startswith("Conv2d_1a_3x3.")}
    stem["Conv2d_1a_3x3.bn.num_batches_tracked"] = torch.tensor(7, dtype=torch.int64)
    torch.save(stem, os.path.join(OUT, "stem.pth"))
    print(f"wrote {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
