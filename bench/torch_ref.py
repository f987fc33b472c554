"""PyTorch reference for `bench/run.ts`: rebuilds each benchmarked generator from the architecture descriptions
(not from upstream source; DCGAN's pytorch/examples netG is imported from scripts/dcgan-fixture.py, its one
definition), loads the bench's random weights from safetensors (strict), and times it on CPU in eval mode.

usage: python3 torch_ref.py <family> <config.json> <weights.safetensors> <inputs.safetensors> <out.f32> <threads>
Prints one JSON line: cold_ms, latency_ms (batch 1, median), batch8_ms, peak_rss_mb. Writes the batch-1 output
as raw float32 NHWC to <out.f32> so the bench can diff it against our engines.
"""
import json, math, os, resource, statistics, struct, sys, time


def since_process_start_ms():
    """Wall time since this process started (the interpreter and `import torch` included), from /proc."""
    with open("/proc/self/stat") as fh:
        start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    return (uptime - start_ticks / os.sysconf("SC_CLK_TCK")) * 1000


T0 = time.perf_counter()
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DT = {"F32": np.float32, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n))
        data = fh.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=DT[v["dtype"]]).reshape(v["shape"]).copy())
    return out


# ---------------- CycleGAN ResnetGenerator (instance norm, no dropout) ----------------
class ResBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        # indices: 0 pad, 1 conv, 2 norm, 3 relu, 4 pad, 5 conv, 6 norm
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim))

    def forward(self, x):
        return x + self.conv_block(x)


def resnet_generator(cfg):
    ngf, nb = cfg["ngf"], 9 if cfg["netG"] == "resnet_9blocks" else 6
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for i in range(2):
        c = ngf * 2 ** i
        layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * c), nn.ReLU(True)]
    layers += [ResBlock(ngf * 4) for _ in range(nb)]
    for i in range(2):
        c = ngf * 2 ** (2 - i)
        layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1), nn.InstanceNorm2d(c // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    m = nn.Module()
    m.model = nn.Sequential(*layers)
    m.forward = lambda x: m.model(x)
    return m


# ---------------- StyleGAN2 (stylegan2-ada Generator, eval path: fused modulated conv) ----------------
SQRT2 = math.sqrt(2)


def lrelu_gain(x):
    return F.leaky_relu(x, 0.2) * SQRT2


class FC(nn.Module):
    def __init__(self, fin, fout, lr=1.0, act=False):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(fout, fin))
        self.bias = nn.Parameter(torch.zeros(fout))
        self.wg, self.lr, self.act = lr / math.sqrt(fin), lr, act

    def forward(self, x):
        w, b = self.weight * self.wg, self.bias * self.lr
        if not self.act:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return lrelu_gain(x.matmul(w.t()) + b)


def upfirdn2d(x, f, up=1, pad=(0, 0, 0, 0), gain=1.0):
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x = F.pad(x, list(pad))
    k = (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, k, groups=c)


class SynthLayer(nn.Module):
    def __init__(self, cin, cout, wdim, res, up):
        super().__init__()
        self.up = up
        self.affine = FC(wdim, cin)
        self.weight = nn.Parameter(torch.zeros(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("resample_filter", torch.zeros(4, 4))
        self.register_buffer("noise_const", torch.zeros(res, res))

    def forward(self, x, w):
        n = x.shape[0]
        s = self.affine(w)
        wt = self.weight[None] * s[:, None, :, None, None]
        wt = wt * (wt.square().sum([2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
        cout, cin = self.weight.shape[:2]
        x = x.reshape(1, -1, *x.shape[2:])
        if self.up == 1:
            x = F.conv2d(x, wt.reshape(-1, cin, 3, 3), padding=1, groups=n)
        else:
            wt = wt.transpose(1, 2).reshape(n * cin, cout, 3, 3)
            x = F.conv_transpose2d(x, wt, stride=2, groups=n)
            x = upfirdn2d(x, self.resample_filter, pad=(1, 1, 1, 1), gain=4)
        x = x.reshape(n, cout, *x.shape[2:])
        x = x + self.noise_const * self.noise_strength
        return lrelu_gain(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    def __init__(self, cin, wdim):
        super().__init__()
        self.affine = FC(wdim, cin)
        self.weight = nn.Parameter(torch.zeros(3, cin, 1, 1))
        self.bias = nn.Parameter(torch.zeros(3))
        self.gain = 1 / math.sqrt(cin)

    def forward(self, x, w):
        n, cin = x.shape[:2]
        s = self.affine(w) * self.gain
        wt = (self.weight[None] * s[:, None, :, None, None]).reshape(-1, cin, 1, 1)
        x = F.conv2d(x.reshape(1, -1, *x.shape[2:]), wt, groups=n).reshape(n, 3, *x.shape[2:])
        return x + self.bias[None, :, None, None]


class Block(nn.Module):
    def __init__(self, cin, cout, wdim, res):
        super().__init__()
        self.res = res
        if cin == 0:
            self.const = nn.Parameter(torch.zeros(cout, res, res))
        self.register_buffer("resample_filter", torch.zeros(4, 4))
        if cin:
            self.conv0 = SynthLayer(cin, cout, wdim, res, 2)
        self.conv1 = SynthLayer(cout, cout, wdim, res, 1)
        self.torgb = ToRGB(cout, wdim)


class StyleGAN2(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        res_log2 = int(math.log2(cfg["img_resolution"]))
        sk = cfg["synthesis_kwargs"]
        ch = lambda r: min(sk["channel_base"] // r, sk["channel_max"])
        wdim = cfg["w_dim"]
        self.synthesis = nn.Module()
        self.blocks = []
        for l in range(2, res_log2 + 1):
            r = 2 ** l
            b = Block(ch(r // 2) if r > 4 else 0, ch(r), wdim, r)
            setattr(self.synthesis, f"b{r}", b)
            self.blocks.append(b)
        self.num_ws = 2 * res_log2 - 2
        self.mapping = nn.Module()
        nl = cfg["mapping_kwargs"]["num_layers"]
        for i in range(nl):
            setattr(self.mapping, f"fc{i}", FC(cfg["z_dim"] if i == 0 else wdim, wdim, 0.01, True))
        self.mapping.register_buffer("w_avg", torch.zeros(wdim))
        self.nl = nl

    def forward(self, z):
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.nl):
            x = getattr(self.mapping, f"fc{i}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        x = img = None
        idx = 0
        for b in self.blocks:
            if b.res == 4:
                x = b.conv1(b.const.unsqueeze(0).repeat(z.shape[0], 1, 1, 1), ws[:, 0])
                idx = 1
            else:
                x = b.conv0(x, ws[:, idx])
                x = b.conv1(x, ws[:, idx + 1])
                idx += 2
            y = b.torgb(x, ws[:, idx])
            img = y if img is None else upfirdn2d(img, b.resample_filter, up=2, pad=(2, 1, 2, 1), gain=4) + y
        return img


# ---------------- SPADE generator (use_vae False, spectral syncbatch 3x3) ----------------
class SPADENorm(nn.Module):
    """`norm` is the parameter-free norm: sync BatchNorm here (served in eval mode), InstanceNorm in train_torch.py."""

    def __init__(self, c, snc, nh=128, norm=nn.BatchNorm2d):
        super().__init__()
        self.param_free_norm = norm(c, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(snc, nh, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(nh, c, 3, padding=1)
        self.mlp_beta = nn.Conv2d(nh, c, 3, padding=1)

    def forward(self, x, seg):
        seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        a = self.mlp_shared(seg)
        return self.param_free_norm(x) * (1 + self.mlp_gamma(a)) + self.mlp_beta(a)


class SPADEBlock(nn.Module):
    def __init__(self, fin, fout, snc, nh=128, norm=nn.BatchNorm2d):
        super().__init__()
        sn = nn.utils.spectral_norm
        fm = min(fin, fout)
        self.learned = fin != fout
        # Created in this order so that train_torch.py, which starts from torch.manual_seed(0) and does not load
        # weights, draws the same initial values it drew with its own copy of the block.
        self.conv_0 = sn(nn.Conv2d(fin, fm, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(fm, fout, 3, padding=1))
        self.norm_0 = SPADENorm(fin, snc, nh, norm)
        self.norm_1 = SPADENorm(fm, snc, nh, norm)
        if self.learned:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, bias=False))
            self.norm_s = SPADENorm(fin, snc, nh, norm)

    def forward(self, x, seg):
        xs = self.conv_s(self.norm_s(x, seg)) if self.learned else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return xs + dx


class SPADEGen(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        nf = cfg["ngf"]
        self.snc = cfg["label_nc"] + (1 if cfg.get("contain_dontcare_label") else 0) + (0 if cfg.get("no_instance") else 1)
        self.sw = cfg["crop_size"] // 32
        self.fc = nn.Conv2d(self.snc, 16 * nf, 3, padding=1)
        self.head_0 = SPADEBlock(16 * nf, 16 * nf, self.snc)
        self.G_middle_0 = SPADEBlock(16 * nf, 16 * nf, self.snc)
        self.G_middle_1 = SPADEBlock(16 * nf, 16 * nf, self.snc)
        self.up_0 = SPADEBlock(16 * nf, 8 * nf, self.snc)
        self.up_1 = SPADEBlock(8 * nf, 4 * nf, self.snc)
        self.up_2 = SPADEBlock(4 * nf, 2 * nf, self.snc)
        self.up_3 = SPADEBlock(2 * nf, nf, self.snc)
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)

    def semantics(self, label, instance):
        n, h, w = label.shape
        nc = self.snc - 1
        sem = torch.zeros(n, nc, h, w).scatter_(1, label.long().unsqueeze(1), 1.0)
        inst = instance.unsqueeze(1)
        e = torch.zeros_like(inst, dtype=torch.bool)
        e[:, :, :, 1:] |= inst[:, :, :, 1:] != inst[:, :, :, :-1]
        e[:, :, :, :-1] |= inst[:, :, :, 1:] != inst[:, :, :, :-1]
        e[:, :, 1:, :] |= inst[:, :, 1:, :] != inst[:, :, :-1, :]
        e[:, :, :-1, :] |= inst[:, :, 1:, :] != inst[:, :, :-1, :]
        return torch.cat([sem, e.float()], 1)

    def forward(self, label, instance):
        seg = self.semantics(label, instance)
        up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")
        x = self.fc(F.interpolate(seg, size=(self.sw, self.sw), mode="nearest"))
        x = self.head_0(x, seg)
        x = self.G_middle_0(up(x), seg)
        x = self.G_middle_1(x, seg)
        for b in (self.up_0, self.up_1, self.up_2, self.up_3):
            x = b(up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


# ---------------- DCGAN: pytorch/examples netG, the one definition in scripts/dcgan-fixture.py ----------------
def dcgan_main(cfg):
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "dcgan-fixture.py")
    spec = importlib.util.spec_from_file_location("dcgan_fixture", path)
    fixture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture)
    convs = [l for l in cfg["layers"] if l["op"] == "conv_transpose2d"]
    nz, ngf, nc = convs[0]["in"], convs[-1]["in"], cfg["nc"]
    return fixture.Main(nz, ngf, nc, len(convs) - 1)


def main():
    family, cfg_path, wpath, ipath, out_path, threads = sys.argv[1:7]
    torch.set_num_threads(int(threads))
    torch.set_num_interop_threads(1)
    cfg = json.load(open(cfg_path))
    inputs = read_safetensors(ipath)
    t_cold = time.perf_counter()
    sd = read_safetensors(wpath)
    model = {"cyclegan": resnet_generator, "stylegan2": StyleGAN2, "spade": SPADEGen, "dcgan": dcgan_main}[family](cfg)
    model.load_state_dict(sd, strict=True)
    model.eval()

    if family == "cyclegan":
        x = inputs["x"].permute(0, 3, 1, 2).contiguous()
        call = lambda n: model(x[:n])
    elif family == "stylegan2":
        call = lambda n: model(inputs["z"][:n])
    elif family == "dcgan":
        z = inputs["z"].reshape(inputs["z"].shape[0], -1, 1, 1)
        call = lambda n: model(z[:n])
    else:
        call = lambda n: model(inputs["label"][:n], inputs["label"][:n])

    with torch.inference_mode():
        y = call(1)
        cold = (time.perf_counter() - t_cold) * 1000
        process_ms = since_process_start_ms()
        lat = []
        for _ in range(int(cfg.get("_b1_runs", 3))):
            t = time.perf_counter(); call(1); lat.append((time.perf_counter() - t) * 1000)
        call(8)
        t = time.perf_counter(); call(8); b8 = (time.perf_counter() - t) * 1000
    y.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32).tofile(out_path)
    print(json.dumps({"engine": "torch", "version": torch.__version__, "cold_ms": cold, "process_ms": process_ms, "threads": torch.get_num_threads(), "latency_ms": min(lat), "latency_median_ms": statistics.median(lat),
                      "latency_runs": lat, "batch8_ms": b8, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
