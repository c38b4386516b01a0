#!/usr/bin/env python3
"""Runs TLK's bench/unet_step and the same network in PyTorch, interleaved, and prints both medians
and the ratio.

The peer is Debian's python3-torch (1.13, built on the same oneDNN 2.6.3 as TLK): run this with
/usr/bin/python3. The PyTorch network mirrors TLK's nnUNet-style UNet: per stage two
conv(bias)-InstanceNorm(affine)-LeakyReLU(0.01) blocks, a strided first conv for downsampling,
transposed-conv (kernel = stride, no bias) upsampling with skip concat, 1x1x1 heads without bias,
deep supervision with nnUNet's weights, loss CE + soft Dice (nnUNet's -dc, background excluded),
SGD Nesterov (lr 1e-2, momentum 0.99, weight decay 3e-5).

  /usr/bin/python3 bench/compare_pytorch.py --rounds 3 -- --batch 2 --patch 64,64,64 --iters 3 --threads 2

Each round starts a fresh process of each (TLK first, then PyTorch), so caches and memory start
cold for both; peak RSS is each process's own maximum resident set.

On a GPU machine, run it with the python3 that holds that machine's PyTorch and add `--device cuda`
to the flags; both sides then use cuDNN (PyTorch with cudnn.benchmark on, TF32 as --tf32 says) and
the table adds each side's peak GPU memory held by tensors:

  python3 bench/compare_pytorch.py --rounds 3 -- --device cuda --batch 2 --patch 128,128,128 --iters 20
"""
import argparse
import contextlib
import datetime
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time

LINE = re.compile(r"train_step_ms=([\d.]+) forward_ms=([\d.]+) peak_rss_mb=([\d.]+)(?: peak_gpu_mb=([\d.]+))?")


def bench_args(argv):
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--patch", default="64,64,64")
    p.add_argument("--base", type=int, default=32)
    p.add_argument("--max-features", type=int, default=320)
    p.add_argument("--levels", type=int, default=5)
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--tf32", choices=["on", "off"], default="on")
    p.add_argument("--precision", choices=["f32", "bf16", "f16"], default="f32")
    p.add_argument("--conv-search", choices=["heuristic", "exhaustive"], default="heuristic")
    # auto is plain here: PyTorch's default, and its faster layout for this network on an H200.
    p.add_argument("--layout", choices=["auto", "plain", "channels_last"], default="auto")
    return p.parse_args(argv)


def torch_worker(a, kernels=0):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    if a.device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = a.tf32 == "on"
        torch.backends.cuda.matmul.allow_tf32 = a.tf32 == "on"
    patch = [int(v) for v in a.patch.split(",")]
    feats = [min(a.base * 2 ** i, a.max_features) for i in range(a.levels)]

    def stage(cin, cout, stride):
        return nn.Sequential(
            nn.Conv3d(cin, cout, 3, stride, 1), nn.InstanceNorm3d(cout, eps=1e-5, affine=True), nn.LeakyReLU(0.01),
            nn.Conv3d(cout, cout, 3, 1, 1), nn.InstanceNorm3d(cout, eps=1e-5, affine=True), nn.LeakyReLU(0.01))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.ModuleList([stage(1 if i == 0 else feats[i - 1], feats[i], 1 if i == 0 else 2)
                                      for i in range(a.levels)])
            self.up = nn.ModuleList([nn.ConvTranspose3d(feats[d + 1], feats[d], 2, 2, bias=False)
                                     for d in range(a.levels - 1)])
            self.dec = nn.ModuleList([stage(2 * feats[d], feats[d], 1) for d in range(a.levels - 1)])
            self.heads = nn.ModuleList([nn.Conv3d(feats[d], a.classes, 1, bias=False) for d in range(a.levels - 1)])
            for m in self.modules():
                if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
                    nn.init.kaiming_normal_(m.weight, a=1e-2)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

        def forward(self, x, deep_supervision=True):
            skips = []
            for s in self.enc:
                x = s(x)
                skips.append(x)
            outs = [None] * (a.levels - 1)
            for d in range(a.levels - 2, -1, -1):
                x = self.dec[d](torch.cat([self.up[d](x), skips[d]], 1))
                if deep_supervision or d == 0:
                    outs[d] = self.heads[d](x)
            return outs if deep_supervision else outs[:1]

    def dice_ce(logits, target):
        ce = F.cross_entropy(logits, target)
        p = torch.softmax(logits, 1)
        y = F.one_hot(target, a.classes).permute(0, 4, 1, 2, 3).to(p.dtype)
        axes = (2, 3, 4)
        tp = (p * y).sum(axes)
        fp = (p * (1 - y)).sum(axes)
        fn = ((1 - p) * y).sum(axes)
        dc = (2 * tp + 1e-5) / torch.clamp(2 * tp + fp + fn + 1e-5, min=1e-8)
        return ce - dc[:, 1:].mean()

    n_out = a.levels - 1
    w = [0.0 if (i == n_out - 1 and n_out > 1) else 1.0 / 2 ** i for i in range(n_out)]
    w = [v / sum(w) for v in w]
    net = UNet()
    x = torch.randn(a.batch, 1, *patch)
    labels = torch.zeros(a.batch, *patch, dtype=torch.long)
    grid = torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in patch], indexing="ij"))
    for n in range(a.batch):
        for c in range(1, a.classes):
            centre = torch.tensor(patch, dtype=torch.float32) * (0.3 + 0.4 * torch.rand(3))
            radius = 0.2 * min(patch)
            labels[n][((grid - centre.view(3, 1, 1, 1)) ** 2).sum(0) < radius ** 2] = c
    net, x, labels = net.to(dev), x.to(dev), labels.to(dev)
    if a.layout == "channels_last":  # PyTorch's way: the model's weights and the input in NDHWC
        net, x = net.to(memory_format=torch.channels_last_3d), x.to(memory_format=torch.channels_last_3d)
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.99, nesterov=True, weight_decay=3e-5)
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)

    # --precision bf16 / f16: torch.autocast with f32 master weights (f16 with a GradScaler), as
    # TLK's AutocastGuard; the losses run in f32 (softmax and cross-entropy are on autocast's f32 list).
    amp_dtype = {"f32": None, "bf16": torch.bfloat16, "f16": torch.float16}[a.precision]
    autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext
    scaler = torch.amp.GradScaler("cuda") if a.precision == "f16" else None

    def train_step():
        net.train()
        opt.zero_grad()
        with autocast():
            outs = net(x)
            loss = 0
            for i, o in enumerate(outs):
                if w[i] == 0:
                    continue
                s = [patch[k] // o.shape[2 + k] for k in range(3)]
                loss = loss + w[i] * dice_ce(o.float(), labels[:, ::s[0], ::s[1], ::s[2]])
        if scaler:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()

    def forward():
        net.eval()
        with torch.no_grad(), autocast():
            net(x, deep_supervision=False)

    def timed(fn):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        return 1e3 * (time.perf_counter() - t0)

    train_step()
    forward()
    sync()
    if a.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train = statistics.median(timed(train_step) for _ in range(a.iters))
    fwd = statistics.median(timed(forward) for _ in range(a.iters))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    gpu = f" peak_gpu_mb={torch.cuda.max_memory_allocated() / 2 ** 20:.0f}" if a.device == "cuda" else ""
    print(f"train_step_ms={train:.1f} forward_ms={fwd:.1f} peak_rss_mb={rss:.0f}{gpu}")
    if kernels:
        # One more step under the profiler: the device kernels PyTorch's step runs, slowest first.
        from torch.profiler import ProfilerActivity, profile
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if a.device == "cuda" else [])
        with profile(activities=acts) as prof:
            train_step()
            sync()
        key = "self_cuda_time_total" if a.device == "cuda" else "self_cpu_time_total"
        for line in prof.key_averages().table(sort_by=key, row_limit=kernels, max_name_column_width=90).splitlines():
            print("# " + line)


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"compare_pytorch: {' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    m = LINE.search(out.stdout)
    if not m:
        sys.exit(f"compare_pytorch: no result line in the output of {' '.join(cmd)}")
    return [float(v) for v in m.groups() if v is not None]


def main():
    if "--worker" in sys.argv:
        argv = [v for v in sys.argv[1:] if v != "--worker"]
        kernels = 0
        if "--kernels" in argv:
            i = argv.index("--kernels")
            kernels = int(argv[i + 1])
            del argv[i:i + 2]
        return torch_worker(bench_args(argv), kernels)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--tlk", default=os.path.join(os.path.dirname(__file__), "..", "build", "bench", "unet_step"),
                   help="path to TLK's unet_step binary (default build/bench/unet_step)")
    p.add_argument("--torch-kernels", type=int, default=0, metavar="N",
                   help="after the rounds, profile one PyTorch step and print its N slowest kernels")
    p.add_argument("bench", nargs=argparse.REMAINDER, help="-- then the unet_step flags, passed to both")
    a = p.parse_args()
    flags = [f for f in a.bench if f != "--"]
    bench_args(flags)  # validate
    if not os.path.exists(a.tlk):
        sys.exit(f"compare_pytorch: {a.tlk} not found; build TLK first (bash tools/setup.sh demo)")
    tlk, torch_r = [], []
    for r in range(a.rounds):
        tlk.append(run([a.tlk] + flags))
        torch_r.append(run([sys.executable, __file__, "--worker"] + flags))
        print(f"round {r + 1}: TLK {tlk[-1]}  PyTorch {torch_r[-1]}", flush=True)
    med = lambda rows, i: statistics.median(row[i] for row in rows)
    print(f"\n{datetime.date.today()} {platform.node()} {platform.processor() or platform.machine()}, "
          f"flags: {' '.join(flags)}, {a.rounds} interleaved rounds, medians")
    print(f"{'':24}{'TLK':>10}{'PyTorch':>10}{'PyTorch/TLK':>13}")
    names = ["train step (ms)", "forward (ms)", "peak RSS (MB)", "peak GPU memory (MB)"]
    for i, name in enumerate(names[:min(len(tlk[0]), len(torch_r[0]))]):
        t, pt = med(tlk, i), med(torch_r, i)
        print(f"{name:24}{t:>10.0f}{pt:>10.0f}{pt / t:>12.2f}x")
    if a.torch_kernels:
        out = subprocess.run([sys.executable, __file__, "--worker", "--kernels", str(a.torch_kernels)] + flags,
                             capture_output=True, text=True)
        print(out.stdout + out.stderr[-2000:])


if __name__ == "__main__":
    main()
