#!/usr/bin/env python3
"""
Reference draws for packages/core/test/torch-randn.test.ts: `torch.manual_seed(seed); torch.randn(n)` in float32
on CPU, from the official torch wheel, for seeds 0-99 at lengths 1, 2, 15 (the serial float64 Box-Muller path),
16, 17, 100, 1000 and 4097 (the 16-at-a-time fill, with and without the recomputed tail).

    python3 -m venv --system-site-packages /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0
    /tmp/torchvenv/bin/python scripts/torch-randn-fixture.py

Writes test/fixtures/seeds/:
  torch-randn.bin   float32 little-endian vectors, one after another, at the offsets the index gives
  torch-randn.json  the index: torch version, CPU capability, and per case {seed, n, offset} for the vectors
                    stored whole (every seed at n <= 100; seeds 0-2 at 1000 and 4097) or {seed, n, sha256}
                    of the float32 bytes for the rest, so the long vectors stay bit-exact but small.

Run it on an x86-64 machine with AVX2: PyTorch's 16-at-a-time fill has a different last bit without it
(ATEN_CPU_CAPABILITY=default), and the script refuses to write then.
"""
import hashlib
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "seeds")
SEEDS = range(100)
LENGTHS = [1, 2, 15, 16, 17, 100, 1000, 4097]
FULL_MAX_N = 100  # longer vectors are stored whole only for FULL_LONG_SEEDS
FULL_LONG_SEEDS = {0, 1, 2}


def main() -> None:
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in ("AVX2", "AVX512"):
        sys.exit(f"CPU capability {capability}: the fixture is defined by the AVX2 fill; run on x86-64 with AVX2")
    torch.set_num_threads(1)
    blob = bytearray()
    cases = []
    for n in LENGTHS:
        for seed in SEEDS:
            torch.manual_seed(seed)
            raw = torch.randn(n, dtype=torch.float32).numpy().astype("<f4").tobytes()
            if n <= FULL_MAX_N or seed in FULL_LONG_SEEDS:
                cases.append({"seed": seed, "n": n, "offset": len(blob) // 4})
                blob += raw
            else:
                cases.append({"seed": seed, "n": n, "sha256": hashlib.sha256(raw).hexdigest()})
    index = {
        "source": "torch.manual_seed(seed); torch.randn(n) (float32, CPU), scripts/torch-randn-fixture.py",
        "torch": torch.__version__,
        "cpu_capability": capability,
        "bin": "torch-randn.bin",
        "cases": cases,
    }
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "torch-randn.bin"), "wb") as fh:
        fh.write(bytes(blob))
    with open(os.path.join(OUT, "torch-randn.json"), "w") as fh:
        # One case a line: diffs of a regenerated fixture stay readable.
        head = json.dumps({k: v for k, v in index.items() if k != "cases"}, indent=1)[:-2]
        rows = ",\n".join(json.dumps(c, separators=(",", ":")) for c in cases)
        fh.write(f'{head},\n "cases": [\n{rows}\n ]\n}}\n')
    print(f"{len(cases)} cases, {len(blob)} bytes of float32")


if __name__ == "__main__":
    main()
