#!/usr/bin/env python3
"""TLK's bridge to PyTorch: golden files for TLK's tests, and PyTorch weights as TLK checkpoints.

Run with Debian's PyTorch and h5py (python3-torch 1.13, python3-h5py):

  /usr/bin/python3 tools/torch_bridge.py goldens
      writes tests/goldens/*.h5, which TLK's tests compare against (they never need Python)
  /usr/bin/python3 tools/torch_bridge.py convert MODEL.pth OUT.h5 --levels 5 --classes 3 [--in-channels 1]
      [--base-features 32] [--max-features 320] [--kernel-sizes 1x3x3,3x3x3,...] [--strides 1x1x1,1x2x2,...]
      [--map MAP.txt]
      converts a PyTorch state_dict (a plain state_dict, or a checkpoint dict holding one under
      'state_dict' or 'network_weights' as nnUNet saves it) into a TLK checkpoint of the unet3d model,
      which `task::load_checkpoint` + `task::rebuild_model` (and later `tlk train --resume`/fine-tuning)
      read. Names already in TLK's form are kept; nnUNet v2 PlainConvUNet names are mapped
      (see NNUNET_V2 below); --map adds 'regex => replacement' lines applied first.

goldens:

unet_small.h5 holds, for a small nnUNet-style UNet (3 stages, 4..16 features, 2 classes) with fixed
weights and input:
  params/<name>           the initial parameters, named as TLK names them
  input, labels           a [2, 1, 8, 8, 8] input and [2, 8, 8, 8] labels
  outputs/<i>             the deep-supervision logits of the forward pass
  loss                    nnUNet's deep-supervision CE + soft Dice loss
  grads/<name>            every parameter's gradient after one backward (none for the unused head)
  params_after_3/<name>   the parameters after 3 steps of SGD (lr 0.01, momentum 0.99, Nesterov, wd 3e-5)
unet_small_from_nnunet_v2.h5 is unet_small's parameters renamed the way nnUNet v2's PlainConvUNet
names them (with its duplicate copies) and converted back by `convert`: TLK's tests load it.
optimizers.h5 holds parameter trajectories of SGD-Nesterov, Adam and AdamW on a fixed gradient sequence.
"""
import os

import h5py
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "goldens")


class Stage(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, 3, stride, 1)
        self.norm1 = nn.InstanceNorm3d(cout, eps=1e-5, affine=True)
        self.conv2 = nn.Conv3d(cout, cout, 3, 1, 1)
        self.norm2 = nn.InstanceNorm3d(cout, eps=1e-5, affine=True)

    def forward(self, x):
        x = F.leaky_relu(self.norm1(self.conv1(x)), 0.01)
        return F.leaky_relu(self.norm2(self.conv2(x)), 0.01)


class UNet(nn.Module):
    """TLK's nn::UNet, parameter for parameter and name for name."""

    def __init__(self, feats, classes):
        super().__init__()
        levels = len(feats)
        self.encoder = nn.Module()
        self.encoder.stages = nn.ModuleList(
            [Stage(1 if i == 0 else feats[i - 1], feats[i], 1 if i == 0 else 2) for i in range(levels)])
        self.decoder = nn.Module()
        self.decoder.upsample = nn.ModuleList(
            [nn.ConvTranspose3d(feats[d + 1], feats[d], 2, 2, bias=False) for d in range(levels - 1)])
        self.decoder.stages = nn.ModuleList([Stage(2 * feats[d], feats[d], 1) for d in range(levels - 1)])
        self.decoder.heads = nn.ModuleList([nn.Conv3d(feats[d], classes, 1, bias=False) for d in range(levels - 1)])

    def forward(self, x):
        skips = []
        for s in self.encoder.stages:
            x = s(x)
            skips.append(x)
        outs = [None] * len(self.decoder.stages)
        for d in range(len(self.decoder.stages) - 1, -1, -1):
            x = self.decoder.stages[d](torch.cat([self.decoder.upsample[d](x), skips[d]], 1))
            outs[d] = self.decoder.heads[d](x)
        return outs


def dice_ce(logits, target, classes):
    ce = F.cross_entropy(logits, target)
    p = torch.softmax(logits, 1)
    y = F.one_hot(target, classes).permute(0, 4, 1, 2, 3).to(p.dtype)
    tp, fp, fn = (p * y).sum((2, 3, 4)), (p * (1 - y)).sum((2, 3, 4)), ((1 - p) * y).sum((2, 3, 4))
    dc = (2 * tp + 1e-5) / torch.clamp(2 * tp + fp + fn + 1e-5, min=1e-8)
    return ce - dc[:, 1:].mean()


def ds_loss(outs, labels, classes):
    n = len(outs)
    w = [0.0 if (i == n - 1 and n > 1) else 1.0 / 2 ** i for i in range(n)]
    w = [v / sum(w) for v in w]
    loss = 0
    for i, o in enumerate(outs):
        if w[i] == 0:
            continue
        s = [labels.shape[1 + k] // o.shape[2 + k] for k in range(3)]
        loss = loss + w[i] * dice_ce(o, labels[:, ::s[0], ::s[1], ::s[2]], classes)
    return loss


def unet_goldens(path):
    torch.manual_seed(1234)
    classes = 2
    net = UNet([4, 8, 16], classes)
    for m in net.modules():  # nnUNet's init; norms get non-trivial affine values so their grads matter
        if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
            nn.init.kaiming_normal_(m.weight, a=1e-2)
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.1, 0.1)
        if isinstance(m, nn.InstanceNorm3d):
            nn.init.uniform_(m.weight, 0.8, 1.2)
            nn.init.uniform_(m.bias, -0.1, 0.1)
    x = torch.randn(2, 1, 8, 8, 8)
    grid = torch.stack(torch.meshgrid(*[torch.arange(8.0)] * 3, indexing="ij"))
    labels = torch.zeros(2, 8, 8, 8, dtype=torch.long)
    labels[0][((grid - 3.5) ** 2).sum(0) < 9] = 1
    labels[1][((grid - torch.tensor([2.0, 5.0, 4.0]).view(3, 1, 1, 1)) ** 2).sum(0) < 6] = 1
    with h5py.File(path, "w") as f:
        for name, p in net.named_parameters():
            f[f"params/{name}"] = p.detach().numpy()
        f["input"] = x.numpy()
        f["labels"] = labels.numpy()
        outs = net(x)
        loss = ds_loss(outs, labels, classes)
        loss.backward()
        for i, o in enumerate(outs):
            f[f"outputs/{i}"] = o.detach().numpy()
        f["loss"] = loss.detach().numpy()
        for name, p in net.named_parameters():
            if p.grad is not None:  # the lowest-resolution head has weight 0: no gradient
                f[f"grads/{name}"] = p.grad.numpy()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.99, nesterov=True, weight_decay=3e-5)
        opt.step()
        for _ in range(2):
            opt.zero_grad()
            ds_loss(net(x), labels, classes).backward()
            opt.step()
        for name, p in net.named_parameters():
            f[f"params_after_3/{name}"] = p.detach().numpy()


def optimizer_goldens(path):
    start = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    grads = [torch.tensor([0.5, 0.25 * (t + 1), -1.0], dtype=torch.float64) for t in range(5)]
    makers = {
        "sgd_nesterov": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        "adam": lambda p: torch.optim.Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
        "adamw": lambda p: torch.optim.AdamW([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
    }
    with h5py.File(path, "w") as f:
        f["start"] = start.numpy()
        f["grads"] = torch.stack(grads).numpy()
        for name, make in makers.items():
            p = start.clone().requires_grad_(True)
            opt = make(p)
            trajectory = []
            for g in grads:
                p.grad = g.clone()
                opt.step()
                trajectory.append(p.detach().clone())
            f[name] = torch.stack(trajectory).numpy()


# nnUNet v2's PlainConvUNet (dynamic_network_architectures) -> TLK's UNet. Decoder stage i of nnUNet
# counts from the lowest resolution; TLK's decoder index d counts from the full resolution, so
# d = (levels - 2) - i. nnUNet's state_dict also holds every weight a second time (the `all_modules`
# Sequential and the decoder's reference to the encoder): those copies are dropped.
NNUNET_V2 = [
    (r"^encoder\.stages\.(\d+)\.0\.convs\.(\d+)\.(conv|norm)\.(weight|bias)$", "encoder"),
    (r"^decoder\.stages\.(\d+)\.convs\.(\d+)\.(conv|norm)\.(weight|bias)$", "decoder"),
    (r"^decoder\.transpconvs\.(\d+)\.(weight|bias)$", "upsample"),
    (r"^decoder\.seg_layers\.(\d+)\.(weight|bias)$", "head"),
]
DROPPED = [r"\.all_modules\.", r"^decoder\.encoder\.", r"num_batches_tracked$"]


def tlk_name(name, levels):
    import re

    for pattern in DROPPED:
        if re.search(pattern, name):
            return None
    for pattern, kind in NNUNET_V2:
        m = re.match(pattern, name)
        if not m:
            continue
        g = m.groups()
        if kind == "encoder":
            return f"encoder.stages.{g[0]}.{g[2]}{int(g[1]) + 1}.{g[3]}"
        d = (levels - 2) - int(g[0])
        if kind == "decoder":
            return f"decoder.stages.{d}.{g[2]}{int(g[1]) + 1}.{g[3]}"
        if kind == "upsample":
            return f"decoder.upsample.{d}.{g[1]}"
        return f"decoder.heads.{d}.{g[1]}"
    return name


def convert(args):
    import re

    loaded = torch.load(args.model, map_location="cpu")
    if isinstance(loaded, dict) and "network_weights" in loaded:
        loaded = loaded["network_weights"]
    elif isinstance(loaded, dict) and "state_dict" in loaded:
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(torch.is_tensor(v) for v in loaded.values()):
        raise SystemExit(f"convert: {args.model} holds no state_dict (expected name -> tensor)")
    rules = []
    if args.map:
        for line in open(args.map):
            if "=>" in line and not line.lstrip().startswith("#"):
                pattern, replacement = (part.strip() for part in line.split("=>", 1))
                rules.append((re.compile(pattern), replacement))
    model = {}
    for name, tensor in loaded.items():
        for pattern, replacement in rules:
            name = pattern.sub(replacement, name)
        target = tlk_name(name, args.levels)
        if target is None:
            continue
        if target in model:
            raise SystemExit(f"convert: two tensors map to '{target}'; add a --map rule")
        model[target] = tensor.detach().float().numpy()
    tmp = args.out + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = "tlk-checkpoint-1"
        for key, value in {"epoch": 0, "iteration": 0, "schedule_step": 0}.items():
            f.attrs[key] = str(value)
        f.attrs["meta.model"] = "unet3d"
        f.attrs["meta.model.in_channels"] = str(args.in_channels)
        f.attrs["meta.model.num_classes"] = str(args.classes)
        f.attrs["meta.model.option.levels"] = str(args.levels)
        f.attrs["meta.model.option.base_features"] = str(args.base_features)
        f.attrs["meta.model.option.max_features"] = str(args.max_features)
        # nnUNet v2's PlainConvUNet puts biases on the transposed convolutions and the heads.
        if any(n.startswith("decoder.upsample.") and n.endswith(".bias") for n in model):
            f.attrs["meta.model.option.upsample_bias"] = "true"
        if any(n.startswith("decoder.heads.") and n.endswith(".bias") for n in model):
            f.attrs["meta.model.option.head_bias"] = "true"
        for key in ("kernel_sizes", "strides"):
            if getattr(args, key, None):
                f.attrs[f"meta.model.option.{key}"] = getattr(args, key)
        f.attrs["meta.converted_from"] = os.path.basename(args.model)
        f["rng_state"] = [0, 0, 0, 0, 0, 0]
        for name, array in model.items():
            f[f"model/{name}"] = array
    os.replace(tmp, args.out)
    print(f"convert: {len(model)} tensors written to {args.out}")


def nnunet_v2_golden(unet_path, out_path):
    """unet_small's parameters under nnUNet v2 names (with its duplicate copies), converted back."""
    import re
    import tempfile
    from types import SimpleNamespace

    levels = 3

    def v2_name(name):
        m = re.match(r"encoder\.stages\.(\d+)\.(conv|norm)(\d)\.(weight|bias)$", name)
        if m:
            return f"encoder.stages.{m[1]}.0.convs.{int(m[3]) - 1}.{m[2]}.{m[4]}"
        m = re.match(r"decoder\.stages\.(\d+)\.(conv|norm)(\d)\.(weight|bias)$", name)
        if m:
            return f"decoder.stages.{levels - 2 - int(m[1])}.convs.{int(m[3]) - 1}.{m[2]}.{m[4]}"
        m = re.match(r"decoder\.(upsample|heads)\.(\d+)\.(weight|bias)$", name)
        kind = "transpconvs" if m[1] == "upsample" else "seg_layers"
        return f"decoder.{kind}.{levels - 2 - int(m[2])}.{m[3]}"

    state = {}
    with h5py.File(unet_path, "r") as f:
        for name, data in f["params"].items():
            t = torch.tensor(data[()])
            v2 = v2_name(name)
            state[v2] = t
            state[v2.replace(".conv.", ".all_modules.0.")] = t
            if v2.startswith("encoder."):
                state["decoder." + v2] = t
    with tempfile.TemporaryDirectory() as tmp:
        pth = os.path.join(tmp, "nnunet_v2_small.pth")
        torch.save({"network_weights": state}, pth)
        convert(SimpleNamespace(model=pth, out=out_path, levels=levels, classes=2, in_channels=1, base_features=4,
                                max_features=16, map=None, kernel_sizes=None, strides=None))


def main():
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("goldens", help="write tests/goldens/*.h5")
    c = sub.add_parser("convert", help="a PyTorch state_dict -> a TLK checkpoint")
    c.add_argument("model")
    c.add_argument("out")
    c.add_argument("--levels", type=int, required=True)
    c.add_argument("--classes", type=int, required=True)
    c.add_argument("--in-channels", type=int, default=1)
    c.add_argument("--base-features", type=int, default=32)
    c.add_argument("--max-features", type=int, default=320)
    c.add_argument("--map", help="file of 'regex => replacement' lines applied to every name first")
    c.add_argument("--kernel-sizes", help="per-stage kernels, e.g. 1x3x3,3x3x3,3x3x3 (nnUNet plans)")
    c.add_argument("--strides", help="per-stage strides, e.g. 1x1x1,1x2x2,2x2x2 (nnUNet plans)")
    args = p.parse_args()
    if args.command == "convert":
        return convert(args)
    os.makedirs(OUT, exist_ok=True)
    unet_goldens(os.path.join(OUT, "unet_small.h5"))
    optimizer_goldens(os.path.join(OUT, "optimizers.h5"))
    nnunet_v2_golden(os.path.join(OUT, "unet_small.h5"), os.path.join(OUT, "unet_small_from_nnunet_v2.h5"))
    print(f"goldens written to {os.path.normpath(OUT)} with torch {torch.__version__}")


if __name__ == "__main__":
    main()
