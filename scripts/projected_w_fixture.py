#!/usr/bin/env python3
"""
Parity fixture for `projected_w` (test/latents-projected.test.ts): a `projected_w.npz` written the way NVlabs'
projector.py writes it, and the images NVlabs' generate.py makes from it with `--projected-w`, using the
official networks (stylegan2-ada-pytorch @ d72cc7d, training/networks.py Generator) with the random weights of
the official StyleGAN2 fixture (test/fixtures/official/stylegan2/z32_w32_res32_skip).

    python3 -m venv --system-site-packages /tmp/torchvenv && /tmp/torchvenv/bin/pip install --no-index torch==2.13.0
    git clone https://github.com/NVlabs/stylegan2-ada-pytorch /tmp/sg2ada   # at d72cc7d
    /tmp/torchvenv/bin/python scripts/projected_w_fixture.py /tmp/sg2ada

projector.py needs NVIDIA's VGG16 download, so the optimisation itself is not run: its output is what matters
here. Its w is `w_opt` [1, 1, w_dim] repeated over num_ws, saved with
`np.savez(f'{outdir}/projected_w.npz', w=projected_w.unsqueeze(0).cpu().numpy())`. We take w_opt = a mapped
seed plus N(0, 0.5) noise (an arbitrary point near the w manifold, as a projection ends at). A second file,
`ws_distinct.npz`, has a different w per layer and is written with `np.savez_compressed` (deflate), the other
way numpy writes archives. Images follow generate.py --projected-w exactly: `G.synthesis(w.unsqueeze(0),
noise_mode='const')`, then `(img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)` → PNG.

Writes test/fixtures/latents/projected_w/: projected_w.npz, proj00.png, ws_distinct.npz, distinct00.png,
distinct01.png, cases.json (files, shapes, the torch version and the max |float image| for reference).
"""
import json
import os
import struct
import sys

import zlib

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURE = os.path.join(ROOT, "test", "fixtures", "official", "stylegan2", "z32_w32_res32_skip")
OUT = os.path.join(ROOT, "test", "fixtures", "latents", "projected_w")


def read_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=dtypes[t["dtype"]]).reshape(t["shape"]).copy()
        out[name] = torch.from_numpy(arr)
    return out


def write_png(rgb, path):
    # An 8-bit RGB PNG written by hand (what PIL.Image.fromarray(..., 'RGB').save does, minus PIL itself).
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def to_png(img, path):
    # generate.py's conversion, truncating toward zero.
    img = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    write_png(img[0].cpu().numpy(), path)


def main():
    sys.path.insert(0, sys.argv[1])
    from training.networks import Generator  # the official definition

    manifest = json.load(open(os.path.join(FIXTURE, "manifest.json")))
    cfg = {k: v for k, v in manifest["config"].items() if k not in ("num_ws", "channels_dict")}
    G = Generator(**cfg).eval().requires_grad_(False)
    G.load_state_dict(read_safetensors(os.path.join(FIXTURE, "weights.safetensors")), strict=True)
    os.makedirs(OUT, exist_ok=True)
    rs = np.random.RandomState(2027)

    z = torch.from_numpy(rs.randn(1, G.z_dim))
    w_opt = G.mapping(z, None)[:, :1, :] + torch.from_numpy(rs.randn(1, 1, G.w_dim) * 0.5).float()
    projected_w = w_opt.repeat([1, G.mapping.num_ws, 1])[0]  # [num_ws, w_dim], what project() returns per step
    np.savez(os.path.join(OUT, "projected_w.npz"), w=projected_w.unsqueeze(0).cpu().numpy())

    zs = torch.from_numpy(rs.randn(2 * G.mapping.num_ws, G.z_dim))
    distinct = G.mapping(zs, None)[:, 0, :].reshape(2, G.mapping.num_ws, G.w_dim)
    np.savez_compressed(os.path.join(OUT, "ws_distinct.npz"), w=distinct.cpu().numpy())

    cases = []
    for npz, prefix in (("projected_w.npz", "proj"), ("ws_distinct.npz", "distinct")):
        ws = torch.tensor(np.load(os.path.join(OUT, npz))["w"])
        assert ws.shape[1:] == (G.num_ws, G.w_dim)
        files = []
        peak = 0.0
        for idx, w in enumerate(ws):
            img = G.synthesis(w.unsqueeze(0), noise_mode="const")
            peak = max(peak, float(img.abs().max()))
            name = f"{prefix}{idx:02d}.png"
            to_png(img, os.path.join(OUT, name))
            files.append(name)
        cases.append({"npz": npz, "shape": list(ws.shape), "noise_mode": "const", "images": files, "max_abs_image": peak})
    doc = {
        "source": {"repo": "NVlabs/stylegan2-ada-pytorch", "commit": manifest["source"]["commit"], "file": "generate.py --projected-w"},
        "weights": "official/stylegan2/z32_w32_res32_skip/weights.safetensors",
        "torch": torch.__version__,
        "cases": cases,
    }
    json.dump(doc, open(os.path.join(OUT, "cases.json"), "w"), indent=1)
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
