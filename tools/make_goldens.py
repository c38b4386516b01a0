#!/usr/bin/env python3
"""Writes the PyTorch golden files that TLK's tests compare against (tests/goldens/*.h5).

Run with Debian's PyTorch and h5py:  /usr/bin/python3 tools/make_goldens.py
Needs: python3-torch (1.13) and python3-h5py. The tests only read the files; they never need Python.

unet_small.h5 holds, for a small nnUNet-style UNet (3 stages, 4..16 features, 2 classes) with fixed
weights and input:
  params/<name>           the initial parameters, named as TLK names them
  input, labels           a [2, 1, 8, 8, 8] input and [2, 8, 8, 8] labels
  outputs/<i>             the deep-supervision logits of the forward pass
  loss                    nnUNet's deep-supervision CE + soft Dice loss
  grads/<name>            every parameter's gradient after one backward (none for the unused head)
  params_after_3/<name>   the parameters after 3 steps of SGD (lr 0.01, momentum 0.99, Nesterov, wd 3e-5)
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


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    unet_goldens(os.path.join(OUT, "unet_small.h5"))
    optimizer_goldens(os.path.join(OUT, "optimizers.h5"))
    print(f"goldens written to {os.path.normpath(OUT)} with torch {torch.__version__}")
