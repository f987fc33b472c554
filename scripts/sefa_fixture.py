#!/usr/bin/env python3
"""
Reference SeFa directions for test/latents-sefa.test.ts, computed with numpy alone from the same weights the
TypeScript code reads (packages/core/src/latents/sefa.ts), so the test checks our eigen-solver and layer
selection against an independent implementation.

    python3 scripts/sefa_fixture.py

SeFa (Shen & Zhou 2021, genforce/sefa `factorize_weight`): stack the style affine weights of the chosen layers
(here every modulated layer: each block's conv0, conv1 and torgb, i.e. layer_idx='all'), normalise each output
channel's weight vector over w to unit length, and take the eigenvectors of AᵀA (w_dim × w_dim), largest
eigenvalue first. Eigenvectors are unique only up to sign; the test compares them up to sign.

Writes test/fixtures/latents/sefa-<name>.json: the weights file (relative to the repo), its sha256, the layers,
the top-5 eigenvalues and eigenvectors, in float64.
"""
import hashlib
import json
import os
import re
import struct

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "test", "fixtures", "latents")
MODELS = {
    "fixture": "test/fixtures/official/stylegan2/z32_w32_res32_skip/weights.safetensors",
    "fashion": "models/fashion-stylegan2/weights.safetensors",
}
DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}
AFFINE = re.compile(r"^synthesis\.b(\d+)\.(conv0|conv1|torgb)\.affine\.weight$")
TOP = 5


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
    return raw, out


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, rel in MODELS.items():
        raw, sd = read_safetensors(os.path.join(ROOT, rel))
        order = {"conv0": 0, "conv1": 1, "torgb": 2}
        layers = sorted((k for k in sd if AFFINE.match(k)), key=lambda k: (int(AFFINE.match(k)[1]), order[AFFINE.match(k)[2]]))
        a = np.concatenate([sd[k].astype(np.float64) for k in layers], axis=0)  # [sum C, w_dim]
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        values, vectors = np.linalg.eigh(a.T @ a)
        idx = np.argsort(values)[::-1][:TOP]
        doc = {
            "weights": rel,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "layers": layers,
            "w_dim": int(a.shape[1]),
            "values": [float(values[i]) for i in idx],
            "vectors": [[float(x) for x in vectors[:, i]] for i in idx],
        }
        with open(os.path.join(OUT, f"sefa-{name}.json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        print(name, doc["values"])


if __name__ == "__main__":
    main()
