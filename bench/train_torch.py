"""PyTorch reference for `bench/train.ts`: one training step of each demo recipe (bench/train.ts writes the
config), built from the architecture descriptions (upstream option names, not upstream source), with the
losses and optimisers the ganserve trainers use, timed on CPU over the same step numbers.

usage: python3 train_torch.py <family> <spec.json> <threads>
spec.json: {"config": model.json config, "batch_size", "learning_rate", "options", "warmup", "steps"}
Prints one JSON line: {"family", "seconds_per_step", "cpu_seconds_per_step", "steps", "threads", "version"}
(cpu: this process's CPU time, all threads: on a shared machine it moves less with other load than wall time).

What each step does, as the trainers (packages/core/src/training/<family>) do it:
- cyclegan: G_A, G_B (ResnetGenerator, instance norm) against two PatchGAN Ds (n_layers_D, instance norm);
  LSGAN + cycle L1 (lambda_cycle) + identity L1 (lambda_cycle * lambda_identity); D on real and fake; Adam(0.5, 0.999).
- spade: SPADE generator (spectral norm, SPADE with instance norm, nhidden spade_nhidden) against a
  multiscale PatchGAN (num_D, n_layers_D 3 below 128 px, spectral instance norm) on [semantics; image];
  hinge + feature matching (lambda_feat); D on fakes drawn again without grad; Adam(0, 0.9).
- stylegan2: conditional mapping + synthesis (modulated convs, grouped as in the official inference path,
  random noise) against the resnet D (mbstd, conditioning by projection through a mapping of c); non-saturating
  logistic loss, lazy R1 every r1_interval (16) steps, G_ema update; Adam(0, 0.99).
"""
import json, math, os, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The serving bench's CycleGAN ResnetGenerator, its FIR filter, and its SPADE residual block (with instance norm here).
from torch_ref import SPADEBlock, resnet_generator, upfirdn2d

SQRT2 = math.sqrt(2)


def lrelu(x):
    return F.leaky_relu(x, 0.2) * SQRT2


# ---------------- CycleGAN ----------------
def patch_d(nc, ndf, n_layers):
    seq = [nn.Conv2d(nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1), nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2 ** n_layers, 8)
    seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1), nn.InstanceNorm2d(ndf * mult), nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    return nn.Sequential(*seq)


def cyclegan(spec):
    cfg, o, b = spec["config"], spec["options"], spec["batch_size"]
    size = o.get("load_size", cfg.get("crop_size", 256))
    GA, GB = resnet_generator(cfg), resnet_generator(cfg)
    DA, DB = (patch_d(cfg["output_nc"], o.get("ndf", 64), o.get("n_layers_D", 3)) for _ in range(2))
    optG = torch.optim.Adam([*GA.parameters(), *GB.parameters()], lr=spec["learning_rate"], betas=(0.5, 0.999))
    optD = torch.optim.Adam([*DA.parameters(), *DB.parameters()], lr=spec["learning_rate"], betas=(0.5, 0.999))
    lc, li = o.get("lambda_cycle", 10), o.get("lambda_identity", 0.5)
    mse = lambda p, t: F.mse_loss(p, torch.full_like(p, 1.0 if t else 0.0))

    def step():
        A, B = torch.rand(b, 3, size, size) * 2 - 1, torch.rand(b, 3, size, size) * 2 - 1
        for p in [*DA.parameters(), *DB.parameters()]:
            p.requires_grad_(False)
        fB, fA = GA(A), GB(B)
        loss = (mse(DA(fB), True) + mse(DB(fA), True) + lc * (F.l1_loss(GB(fB), A) + F.l1_loss(GA(fA), B))
                + lc * li * (F.l1_loss(GA(B), B) + F.l1_loss(GB(A), A)))
        optG.zero_grad(set_to_none=True)
        loss.backward()
        optG.step()
        for p in [*DA.parameters(), *DB.parameters()]:
            p.requires_grad_(True)
        fB, fA = fB.detach(), fA.detach()
        lossD = 0.5 * (mse(DA(B), True) + mse(DA(fB), False)) + 0.5 * (mse(DB(A), True) + mse(DB(fA), False))
        optD.zero_grad(set_to_none=True)
        lossD.backward()
        optD.step()
        return float(loss) + float(lossD)

    return step


# ---------------- SPADE ----------------
class SPADEGen(nn.Module):
    def __init__(self, cfg, snc):
        super().__init__()
        nf, nh = cfg["ngf"], cfg.get("spade_nhidden", 128)
        self.sw = cfg["crop_size"] // 32
        self.fc = nn.Conv2d(snc, 16 * nf, 3, padding=1)
        chans = [(16, 16), (16, 16), (16, 16), (16, 8), (8, 4), (4, 2), (2, 1)]
        self.blocks = nn.ModuleList(SPADEBlock(a * nf, b * nf, snc, nh, nn.InstanceNorm2d) for a, b in chans)
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)

    def forward(self, seg):
        x = self.fc(F.interpolate(seg, size=(self.sw, self.sw), mode="nearest"))
        for i, blk in enumerate(self.blocks):
            if i in (1, 3, 4, 5, 6):
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = blk(x, seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


class SpadeD(nn.Module):
    """One scale of SPADE's NLayerDiscriminator with intermediate features (spectral instance norm)."""

    def __init__(self, nc, ndf, n_layers):
        super().__init__()
        sn, pad, nf = nn.utils.spectral_norm, 2, ndf
        seqs = [nn.Sequential(nn.Conv2d(nc, ndf, 4, 2, pad), nn.LeakyReLU(0.2, False))]
        for n in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            seqs.append(nn.Sequential(sn(nn.Conv2d(prev, nf, 4, 1 if n == n_layers - 1 else 2, pad)), nn.InstanceNorm2d(nf), nn.LeakyReLU(0.2, False)))
        seqs.append(nn.Sequential(nn.Conv2d(nf, 1, 4, 1, pad)))
        self.seqs = nn.ModuleList(seqs)

    def forward(self, x):
        out = []
        for s in self.seqs:
            x = s(x)
            out.append(x)
        return out


def spade(spec):
    cfg, o, b = spec["config"], spec["options"], spec["batch_size"]
    snc, size = cfg["label_nc"] + (1 if cfg.get("contain_dontcare_label") else 0) + (0 if cfg.get("no_instance", True) else 1), cfg["crop_size"]
    G = SPADEGen(cfg, snc)
    num_d, n_layers = o.get("num_D", 2), o.get("n_layers_D", 4 if size >= 128 else 3)
    Ds = nn.ModuleList(SpadeD(snc + 3, o.get("ndf", 64), n_layers) for _ in range(num_d))
    optG = torch.optim.Adam(G.parameters(), lr=spec["learning_rate"], betas=(0.0, 0.9))
    optD = torch.optim.Adam(Ds.parameters(), lr=spec["learning_rate"], betas=(0.0, 0.9))
    lf = o.get("lambda_feat", 10)

    def discriminate(seg, fake, real):
        x = torch.cat([torch.cat([seg, fake], 1), torch.cat([seg, real], 1)], 0)
        preds = []
        for i, D in enumerate(Ds):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            preds.append([(t[: t.shape[0] // 2], t[t.shape[0] // 2:]) for t in D(x)])
        return preds

    def step():
        labels = torch.randint(0, cfg["label_nc"], (b, size, size))
        seg = torch.zeros(b, snc, size, size).scatter_(1, labels.unsqueeze(1), 1.0)
        real = torch.rand(b, 3, size, size) * 2 - 1
        fake = G(seg)
        preds = discriminate(seg, fake, real)
        gan = sum(-p[-1][0].mean() for p in preds) / len(preds)
        feat = sum(F.l1_loss(f, r.detach()) for p in preds for f, r in p[:-1]) * lf / len(preds)
        optG.zero_grad(set_to_none=True)
        (gan + feat).backward()
        optG.step()
        with torch.no_grad():
            fake = G(seg)
        preds = discriminate(seg, fake, real)
        lossD = sum(F.relu(1 + p[-1][0]).mean() + F.relu(1 - p[-1][1]).mean() for p in preds) / len(preds)
        optD.zero_grad(set_to_none=True)
        lossD.backward()
        optD.step()
        return float(gan.detach()) + float(lossD.detach())

    return step


# ---------------- StyleGAN2 ----------------
class FC(nn.Module):
    def __init__(self, fin, fout, lr=1.0, act=False, bias_init=0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fout, fin) / lr)
        self.bias = nn.Parameter(torch.full([fout], float(bias_init)))
        self.wg, self.lr, self.act = lr / math.sqrt(fin), lr, act

    def forward(self, x):
        y = torch.addmm(self.bias.unsqueeze(0) * self.lr, x, (self.weight * self.wg).t())
        return lrelu(y) if self.act else y


class Conv(nn.Module):
    """Equalised-lr conv with optional FIR-filtered 2x downsampling (stylegan2-ada Conv2dLayer)."""

    def __init__(self, cin, cout, k, act=True, down=False, bias=True, gain=1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.wg, self.k, self.down, self.act, self.gain = 1 / math.sqrt(cin * k * k), k, down, act, gain

    def forward(self, x):
        w = self.weight * self.wg
        if self.down:
            # conv2d_resample's padding for down=2 with a 4-tap filter: the conv's own k//2 plus 1 each side.
            p = self.k // 2 + 1
            x = blur(x, pad=(p, p, p, p))
            x = F.conv2d(x, w, self.bias, stride=2)
        else:
            x = F.conv2d(x, w, self.bias, padding=self.k // 2)
        return lrelu(x) * self.gain if self.act else x * self.gain


FIR = torch.tensor([1.0, 3.0, 3.0, 1.0])
FIR2 = torch.outer(FIR, FIR) / FIR.sum() ** 2


def blur(x, pad=(0, 0, 0, 0), up=1, gain=1.0):
    return upfirdn2d(x, FIR2, up=up, pad=pad, gain=gain)  # FIR2 is symmetric: upfirdn2d's flip changes nothing


class ModConv(nn.Module):
    def __init__(self, cin, cout, wdim, res, up=1, k=3, demod=True, act=True):
        super().__init__()
        self.affine = FC(wdim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.noise_strength = nn.Parameter(torch.zeros([])) if act else None
        self.up, self.k, self.demod, self.act, self.res = up, k, demod, act, res

    def forward(self, x, w):
        n, cin = x.shape[:2]
        cout = self.weight.shape[0]
        s = self.affine(w) * (1 if self.demod else 1 / math.sqrt(cin))
        wt = self.weight[None] * s[:, None, :, None, None]
        if self.demod:
            wt = wt * (wt.square().sum([2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
        x = x.reshape(1, -1, *x.shape[2:])
        if self.up == 1:
            x = F.conv2d(x, wt.reshape(-1, cin, self.k, self.k), padding=self.k // 2, groups=n)
        else:
            x = F.conv_transpose2d(x, wt.transpose(1, 2).reshape(n * cin, cout, self.k, self.k), stride=2, groups=n)
            x = blur(x, pad=(1, 1, 1, 1), gain=4)
        x = x.reshape(n, cout, *x.shape[2:])
        if not self.act:
            return x + self.bias[None, :, None, None]
        x = x + torch.randn(n, 1, self.res, self.res) * self.noise_strength
        return lrelu(x + self.bias[None, :, None, None])


class SG2Generator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        sk, wdim, cdim = cfg["synthesis_kwargs"], cfg["w_dim"], cfg.get("c_dim", 0)
        ch = lambda r: min(sk["channel_base"] // r, sk["channel_max"])
        self.res = [2 ** l for l in range(2, int(math.log2(cfg["img_resolution"])) + 1)]
        self.const = nn.Parameter(torch.randn(ch(4), 4, 4))
        self.convs = nn.ModuleList()
        self.torgb = nn.ModuleList()
        for r in self.res:
            self.convs.append(nn.ModuleList(([] if r == 4 else [ModConv(ch(r // 2), ch(r), wdim, r, up=2)]) + [ModConv(ch(r), ch(r), wdim, r)]))
            self.torgb.append(ModConv(ch(r), cfg["img_channels"], wdim, r, k=1, demod=False, act=False))
        self.num_ws = 2 * len(self.res)
        self.embed = FC(cdim, wdim) if cdim else None
        nl = cfg["mapping_kwargs"]["num_layers"]
        self.mapping = nn.ModuleList(FC((cfg["z_dim"] + (wdim if cdim else 0)) if i == 0 else wdim, wdim, 0.01, True) for i in range(nl))


def sg2_forward(G, z, c):
    # ws broadcast: style mixing is off in the demo recipe, so every layer takes the same w.
    norm = lambda t: t * (t.square().mean(1, keepdim=True) + 1e-8).rsqrt()
    x = norm(z)
    if G.embed is not None:
        x = torch.cat([x, norm(G.embed(c))], 1)
    for fc in G.mapping:
        x = fc(x)
    w = x
    h, img = G.const[None].repeat(z.shape[0], 1, 1, 1), None
    for convs, torgb in zip(G.convs, G.torgb):
        for conv in convs:
            h = conv(h, w)
        y = torgb(h, w)
        img = y if img is None else blur(img, pad=(2, 1, 2, 1), up=2, gain=4) + y
    return img


class SG2Discriminator(nn.Module):
    def __init__(self, cfg, mapping_layers=8):
        super().__init__()
        sk, cdim = cfg["synthesis_kwargs"], cfg.get("c_dim", 0)
        ch = lambda r: min(sk["channel_base"] // r, sk["channel_max"])
        res = cfg["img_resolution"]
        self.fromrgb = Conv(cfg["img_channels"], ch(res), 1)
        self.blocks = nn.ModuleList()
        r = res
        while r > 4:
            self.blocks.append(nn.ModuleDict({"conv0": Conv(ch(r), ch(r), 3), "conv1": Conv(ch(r), ch(r // 2), 3, down=True, gain=math.sqrt(0.5)),
                                              "skip": Conv(ch(r), ch(r // 2), 1, act=False, down=True, bias=False, gain=math.sqrt(0.5))}))
            r //= 2
        c4 = ch(4)
        self.cmap = c4 if cdim else 0
        self.conv = Conv(c4 + 1, c4, 3)
        self.fc = FC(c4 * 16, c4, act=True)
        self.out = FC(c4, self.cmap or 1)
        self.embed = FC(cdim, self.cmap) if cdim else None
        self.mapping = nn.ModuleList(FC(self.cmap, self.cmap, 0.01, True) for _ in range(mapping_layers)) if cdim else None

    def forward(self, img, c):
        x = self.fromrgb(img)
        for b in self.blocks:
            x = b["skip"](x) + b["conv1"](b["conv0"](x))
        n, ch, h, w = x.shape
        g = min(4, n)
        y = x.reshape(g, -1, 1, ch, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean([2, 3, 4]).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        x = self.conv(torch.cat([x, y], 1))
        x = self.out(self.fc(x.flatten(1)))
        if self.embed is None:
            return x
        cm = self.embed(c)
        cm = cm * (cm.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        for fc in self.mapping:
            cm = fc(cm)
        return (x * cm).sum(1, keepdim=True) / math.sqrt(self.cmap)


def stylegan2(spec):
    cfg, o, b = spec["config"], spec["options"], spec["batch_size"]
    G, D = SG2Generator(cfg), SG2Discriminator(cfg, o.get("d_mapping_layers", 8))
    G_ema = SG2Generator(cfg)
    G_ema.load_state_dict(G.state_dict())
    G_ema.requires_grad_(False)
    optG = torch.optim.Adam(G.parameters(), lr=spec["learning_rate"], betas=(0.0, 0.99), eps=1e-8)
    optD = torch.optim.Adam(D.parameters(), lr=spec["learning_rate"], betas=(0.0, 0.99), eps=1e-8)
    res, cdim, zdim = cfg["img_resolution"], cfg.get("c_dim", 0), cfg["z_dim"]
    gamma = o.get("r1_gamma", 0.0002 * res * res / b)
    interval = o.get("r1_interval", 16)
    k = [0]

    def onehot():
        return F.one_hot(torch.randint(0, max(cdim, 1), (b,)), max(cdim, 1)).float()[:, :cdim]

    def step():
        real, c_real = torch.rand(b, cfg["img_channels"], res, res) * 2 - 1, onehot()
        D.requires_grad_(False)
        lossG = F.softplus(-D(sg2_forward(G, torch.randn(b, zdim), (cG := onehot())), cG)).mean()
        optG.zero_grad(set_to_none=True)
        lossG.backward()
        optG.step()
        D.requires_grad_(True)
        with torch.no_grad():
            fake = sg2_forward(G, torch.randn(b, zdim), (cD := onehot()))
        lossD = F.softplus(D(fake, cD)).mean() + F.softplus(-D(real, c_real)).mean()
        optD.zero_grad(set_to_none=True)
        lossD.backward()
        optD.step()
        if gamma > 0 and k[0] % interval == 0:
            x = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(D(x, c_real).sum(), x, create_graph=True)
            reg = grad.square().sum([1, 2, 3]).mean() * (gamma / 2) * interval
            optD.zero_grad(set_to_none=True)
            reg.backward()
            optD.step()
        with torch.no_grad():
            beta = 0.5 ** (b / max(b * 10 / 32 * 1000, 1e-8))
            for pe, p in zip(G_ema.parameters(), G.parameters()):
                pe.copy_(p.lerp(pe, beta))
        k[0] += 1
        return float(lossG) + float(lossD)

    return step


def main():
    family, spec_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    spec = json.load(open(spec_path))
    step = {"cyclegan": cyclegan, "spade": spade, "stylegan2": stylegan2}[family](spec)
    for _ in range(spec["warmup"]):
        step()
    t0 = time.perf_counter()
    c0 = time.process_time()
    for _ in range(spec["steps"]):
        step()
    sec = (time.perf_counter() - t0) / spec["steps"]
    cpu = (time.process_time() - c0) / spec["steps"]
    print(json.dumps({"family": family, "seconds_per_step": sec, "cpu_seconds_per_step": cpu, "steps": spec["steps"], "threads": torch.get_num_threads(), "version": torch.__version__}))


if __name__ == "__main__":
    main()
