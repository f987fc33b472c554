#!/usr/bin/env python3
"""
DCGAN parity fixtures: small generators in the three layouts people write from the tutorials, built with
torch.nn, given random weights and randomised BatchNorm running statistics, saved the ways people save them,
and run in eval mode on `torch.manual_seed(seed); z = torch.randn(1, *z_shape)`.

    python3 -m venv --system-site-packages /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0
    /tmp/torchvenv/bin/python scripts/dcgan-fixture.py

Writes test/fixtures/dcgan/<model>/ with the same schema as test/fixtures/official (manifest.json, weights.*,
io.safetensors), so the same runners read it:
  fc_deconv_nz100_rgb64   the articles' Generator: fc = Linear(nz, 32*4*4) + BatchNorm1d + ReLU, view to 32x4x4,
                          deconv = 4 x [ConvTranspose2d(4, 2, 1) + BatchNorm2d + ReLU], Tanh (widths scaled down)
  main_nz100_rgb64        pytorch/examples dcgan netG: main = ConvTranspose2d(nz, 8*ngf, 4, 1, 0, bias=False), ...
  main_nz100_gray32       the same shape for one-channel 32x32 (Fashion-MNIST sized), 4 layers
  mlp_nz100_gray28        MNIST MLP generator: main = Linear + ReLU, Linear + ReLU, Linear(., 784) + Tanh
  mlp_bn_lrelu_gray28     PyTorch-GAN style: model = Linear + LeakyReLU(0.2), [Linear + BatchNorm1d(eps 0.8) +
                          LeakyReLU(0.2)] x 2, Linear + Tanh; the activation and eps are not in a state_dict
  sequential_mlp_gray28   a bare nn.Sequential saved whole (torch.save(G)): keys 0.weight, 2.weight, ...

manifest.json `config.layers` lists what the script built, module by module (class, attributes), read from the
modules themselves, so a test can compare a layout inferred from the state_dict alone against it.
"""
import copy
import json
import os
import struct

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "dcgan")
SEEDS = [0, 1, 42]


class FcDeconv(nn.Module):
    def __init__(self, nz: int, base: int, nc: int, n_up: int):
        super().__init__()
        self.base = base
        self.fc = nn.Sequential(nn.Linear(nz, base * 4 * 4), nn.BatchNorm1d(base * 4 * 4), nn.ReLU())
        layers = []
        ch = base
        for i in range(n_up):
            out = nc if i == n_up - 1 else ch // 2
            layers.append(nn.ConvTranspose2d(ch, out, 4, 2, 1))
            if i < n_up - 1:
                layers += [nn.BatchNorm2d(out), nn.ReLU()]
            ch = out
        layers.append(nn.Tanh())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z):
        return self.deconv(self.fc(z).view(-1, self.base, 4, 4))


class Main(nn.Module):
    """pytorch/examples dcgan Generator."""

    def __init__(self, nz: int, ngf: int, nc: int, n_up: int):
        super().__init__()
        mult = 2 ** (n_up - 1)
        layers = [nn.ConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * mult), nn.ReLU(True)]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        return self.main(z)


class Mlp(nn.Module):
    def __init__(self, nz: int, hidden: list, shape: tuple):
        super().__init__()
        self.shape = shape
        dims = [nz, *hidden]
        layers = []
        for a, b in zip(dims, dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(True)]
        layers += [nn.Linear(dims[-1], shape[0] * shape[1] * shape[2]), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        return self.main(z).view(-1, *self.shape)


class MlpBn(nn.Module):
    """eriklindernoren/PyTorch-GAN implementations/gan/gan.py Generator, widths scaled down."""

    def __init__(self, nz: int, shape: tuple):
        super().__init__()
        self.shape = shape

        def block(a, b, normalize=True):
            layers = [nn.Linear(a, b)]
            if normalize:
                layers.append(nn.BatchNorm1d(b, 0.8))  # upstream passes 0.8 positionally: it is eps
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(*block(nz, 16, normalize=False), *block(16, 32), *block(32, 32), nn.Linear(32, shape[0] * shape[1] * shape[2]), nn.Tanh())

    def forward(self, z):
        return self.model(z).view(z.size(0), *self.shape)


def randomise(g: nn.Module, z_shape: tuple) -> None:
    """Weights N(0, 1/fan_in), biases N(0, 0.1); BatchNorm stats from train-mode passes, then perturbed."""
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, (nn.Linear, nn.ConvTranspose2d)):
                w = m.weight
                fan_in = w.shape[1] if isinstance(m, nn.Linear) else w.shape[0] * w.shape[2] * w.shape[3] / (m.stride[0] ** 2)
                w.copy_(torch.randn(w.shape, generator=gen) / fan_in**0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.momentum = None  # cumulative average over the passes below
                m.reset_running_stats()
        g.train()
        for _ in range(4):
            g(torch.randn(16, *z_shape, generator=gen))
        for m in g.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.1
                m.running_mean.add_(0.05 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.mul_(0.8 + 0.45 * torch.rand(m.running_var.shape, generator=gen))
                m.num_batches_tracked.fill_(int(torch.randint(1, 100000, (1,), generator=gen)))
    g.eval()


def describe_layers(g: nn.Module) -> list:
    """The leaf modules in forward order (module registration order, which these forwards follow)."""
    out = []
    for name, m in g.named_modules():
        if list(m.children()):
            continue
        if isinstance(m, nn.Linear):
            out.append({"op": "linear", "key": name, "in": m.in_features, "out": m.out_features, "bias": m.bias is not None})
        elif isinstance(m, nn.ConvTranspose2d):
            out.append(
                {
                    "op": "conv_transpose2d",
                    "key": name,
                    "in": m.in_channels,
                    "out": m.out_channels,
                    "kernel": m.kernel_size[0],
                    "stride": m.stride[0],
                    "padding": m.padding[0],
                    "output_padding": m.output_padding[0],
                    "bias": m.bias is not None,
                }
            )
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            out.append({"op": "batch_norm", "key": name, "features": m.num_features, "eps": m.eps, "affine": m.affine})
        elif isinstance(m, nn.ReLU):
            out.append({"op": "relu"})
        elif isinstance(m, nn.LeakyReLU):
            out.append({"op": "leaky_relu", "slope": m.negative_slope})
        elif isinstance(m, nn.Tanh):
            out.append({"op": "tanh"})
        elif isinstance(m, nn.Unflatten):
            out.append({"op": "reshape", "shape": list(m.unflattened_size)})
        else:
            raise TypeError(f"unexpected module {type(m).__name__}")
    return out


def insert_reshapes(g: nn.Module, layers: list, out_shape: tuple) -> list:
    """The views in forward(): after fc for FcDeconv, at the end for the MLPs (a bare Sequential has none)."""
    if isinstance(g, FcDeconv):
        i = next(i for i, l in enumerate(layers) if l.get("key", "").startswith("deconv."))
        return layers[:i] + [{"op": "reshape", "shape": [g.base, 4, 4]}] + layers[i:]
    if isinstance(g, (Mlp, MlpBn)):
        return layers + [{"op": "reshape", "shape": list(out_shape)}]
    return layers


ST_DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def write_safetensors(path: str, tensors: dict, metadata: dict) -> None:
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for k, t in tensors.items():
        raw = t.detach().contiguous().cpu().numpy().tobytes()
        header[k] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)))
        fh.write(h)
        for b in blobs:
            fh.write(b)


def make(name: str, g: nn.Module, layout: str, z_shape: tuple, formats: set, source: str) -> None:
    randomise(g, z_shape)
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    sd = g.state_dict()
    io = {}
    cases = []
    # The tolerance rule of official/README.md: max(1e-4 * max|expected|, 20 * the float32-vs-float64 difference).
    g64 = copy.deepcopy(g).double()
    with torch.no_grad():
        for seed in SEEDS:
            torch.manual_seed(seed)
            z = torch.randn(1, *z_shape)
            img = g(z)
            measured = float((img.double() - g64(z.double())).abs().max())
            atol = max(1e-4 * float(img.abs().max()), 20 * measured)
            io[f"z_{seed}"] = z
            io[f"img_{seed}"] = img
            cases.append(
                {
                    "name": f"seed_{seed}",
                    "call": {"seed": seed, "sampler": "torch.manual_seed(seed); torch.randn(1, *z_shape)"},
                    "inputs": [f"z_{seed}"],
                    "expected": f"img_{seed}",
                    "atol": atol,
                    "rtol": 1e-4,
                    "measured": {"float64_max_abs_diff": measured},
                }
            )
    out_shape = tuple(io[f"img_{SEEDS[0]}"].shape[1:])
    layers = insert_reshapes(g, describe_layers(g), out_shape)
    config = {"layout": layout, "z_shape": list(z_shape), "nc": out_shape[0], "img_size": out_shape[1], "layers": layers}
    weights = {"safetensors": "weights.safetensors", "num_tensors": len(sd), "num_elements": sum(t.numel() for t in sd.values()), "int64_tensors": [k for k, t in sd.items() if t.dtype == torch.int64]}
    write_safetensors(os.path.join(d, "weights.safetensors"), sd, {"family": "dcgan", "source": source})
    if "pth" in formats:
        torch.save(sd, os.path.join(d, "weights.pth"))
        weights["pth"] = "weights.pth"
    if "pth_legacy" in formats:
        torch.save(sd, os.path.join(d, "weights_legacy.pth"), _use_new_zipfile_serialization=False)
        weights["pth_legacy"] = "weights_legacy.pth"
    if "module" in formats:
        torch.save(g, os.path.join(d, "module.pth"))
        weights["module"] = "module.pth"
    write_safetensors(os.path.join(d, "io.safetensors"), io, {})
    manifest = {
        "schema_version": 1,
        "family": "dcgan",
        "model": name,
        "source": {"file": "scripts/dcgan-fixture.py", "class": type(g).__name__, "torch": torch.__version__, "description": source},
        "config": config,
        "weights": weights,
        "io": {"file": "io.safetensors", "tensors": {k: {"dtype": "F32", "shape": list(v.shape)} for k, v in io.items()}},
        "cases": cases,
    }
    with open(os.path.join(d, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    print(name, weights["num_elements"], "elements")


def main() -> None:
    torch.set_num_threads(1)
    make("fc_deconv_nz100_rgb64", FcDeconv(100, 32, 3, 4), "fc_deconv", (100,), {"pth", "pth_legacy"}, "articles' fc + deconv DCGAN generator")
    make("main_nz100_rgb64", Main(100, 2, 3, 4), "main", (100, 1, 1), {"pth"}, "pytorch/examples dcgan netG (ngf 2)")
    make("main_nz100_gray32", Main(100, 4, 1, 3), "main", (100, 1, 1), {"pth"}, "pytorch/examples dcgan netG, 1 channel, 32x32")
    make("mlp_nz100_gray28", Mlp(100, [16, 32], (1, 28, 28)), "mlp", (100,), {"pth"}, "MNIST MLP generator (hidden widths scaled down)")
    make("mlp_bn_lrelu_gray28", MlpBn(100, (1, 28, 28)), "mlp", (100,), {"pth"}, "PyTorch-GAN gan.py generator (widths scaled down)")
    seq = nn.Sequential(nn.Linear(100, 16), nn.ReLU(), nn.Linear(16, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
    make("sequential_mlp_gray28", seq, "mlp", (100,), {"module"}, "a bare nn.Sequential MLP saved whole with torch.save(G)")


if __name__ == "__main__":
    main()
