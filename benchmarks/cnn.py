"""Lesson 05's small CNN: time to a target accuracy and images/s, fp32 vs the fast configuration.

    python benchmarks/cnn.py                       # current device, target 70 % test accuracy
    python benchmarks/cnn.py --target 0.75 --max-epochs 20 --n-train 50000
    COURSE_DEVICE=cpu python benchmarks/cnn.py --n-train 5000 --max-epochs 2

Configurations:
  * ``fp32``: NCHW float32, batch 128, Adam + one-cycle LR;
  * ``fast``: channels_last + autocast (bf16 where supported, else fp16 with a
    GradScaler) + ``torch.compile`` on CUDA, batch 512 with a 2x higher peak LR.

The whole training set lives on the device as one normalised tensor (no
DataLoader), so the numbers measure the model, not the input pipeline. It
prints the device and which data it used: real CIFAR-10 or the course's
stand-in (whose accuracies are NOT CIFAR-10 accuracies).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.data.cifar import cifar10, describe_source
from course_utils.device import describe_device, get_device


class SmallCNN(nn.Module):
    """The lesson's CNN: two 5x5 conv + BatchNorm + max-pool blocks, two linear layers."""

    def __init__(self, c1=16, c2=32, hidden=64, n_classes=10):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, c1, 5), nn.BatchNorm2d(c1)    # [N, 3, 32, 32] -> [N, c1, 28, 28]
        self.conv2, self.bn2 = nn.Conv2d(c1, c2, 5), nn.BatchNorm2d(c2)   # [N, c1, 14, 14] -> [N, c2, 10, 10]
        self.fc1, self.fc2 = nn.Linear(c2 * 25, hidden), nn.Linear(hidden, n_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)             # [N, c1, 14, 14]
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)             # [N, c2, 5, 5]
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def load(n_train: int, n_test: int, device):
    train, test = cifar10(train=True, allow_standin=True), cifar10(train=False, allow_standin=True)

    def tensors(ds, n):
        x = torch.from_numpy(ds.data[:n]).permute(0, 3, 1, 2).float().div(255)  # [N, C, H, W]
        return x, torch.tensor(ds.targets[:n])

    x_train, y_train = tensors(train, n_train)
    x_test, y_test = tensors(test, n_test)
    mean, std = x_train.mean((0, 2, 3), keepdim=True), x_train.std((0, 2, 3), keepdim=True)
    norm = lambda x: ((x - mean) / std).to(device)  # noqa: E731
    return train, norm(x_train), y_train.to(device), norm(x_test), y_test.to(device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def run(name, data, device, *, batch, lr, fast, target, max_epochs, compile_ok):
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(0)
    model = SmallCNN().to(device)
    amp = None
    if fast:
        model = model.to(memory_format=torch.channels_last)
        x_train = x_train.contiguous(memory_format=torch.channels_last)
        x_test = x_test.contiguous(memory_format=torch.channels_last)
        bf16 = device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported())
        amp = torch.bfloat16 if bf16 else torch.float16
    scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)
    steps_per_epoch = len(x_train) // batch
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max_epochs * steps_per_epoch)
    fn = model
    notes = []
    if fast and compile_ok:
        try:
            fn = torch.compile(model)
            notes.append("compiled")
        except Exception as exc:  # noqa: BLE001 - report and go on uncompiled
            notes.append(f"compile failed: {type(exc).__name__}")

    def evaluate():
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            correct = sum((fn(x_test[i:i + 1000]).argmax(1) == y_test[i:i + 1000]).sum().item()
                          for i in range(0, len(x_test), 1000))
        model.train()
        return correct / len(x_test)

    train_s, images, reached, acc, first_epoch_s = 0.0, 0, None, 0.0, None
    for epoch in range(1, max_epochs + 1):
        perm = torch.randperm(len(x_train), device=device)
        sync(device)
        t0 = time.perf_counter()
        for i in range(steps_per_epoch):
            idx = perm[i * batch:(i + 1) * batch]
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                loss = F.cross_entropy(fn(x_train[idx]), y_train[idx])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
        sync(device)
        seconds = time.perf_counter() - t0
        first_epoch_s = first_epoch_s or seconds
        train_s += seconds
        images += steps_per_epoch * batch
        acc = evaluate()
        print(f"  {name:<5} epoch {epoch:>2}: test acc {acc:.1%}, {steps_per_epoch * batch / seconds:,.0f} images/s")
        if acc >= target and reached is None:
            reached = train_s
            break
    steady = (images - steps_per_epoch * batch) / (train_s - first_epoch_s) if epoch > 1 else images / train_s
    return dict(name=name, batch=batch, reached=reached, epochs=epoch, acc=acc, ips=steady,
                notes=", ".join(notes + ([f"fp16+GradScaler"] if scaler.is_enabled() else
                                         [str(amp)[6:]] if amp else [])))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", type=float, default=0.70, help="test accuracy to reach (default 0.70)")
    ap.add_argument("--max-epochs", type=int, default=15)
    ap.add_argument("--n-train", type=int, default=50_000)
    ap.add_argument("--n-test", type=int, default=10_000)
    ap.add_argument("--only", choices=["fp32", "fast"], help="run one configuration")
    args = ap.parse_args(argv)

    device = get_device()
    print(f"device: {describe_device(device)} | torch {torch.__version__}")
    train_ds, *data = load(args.n_train, args.n_test, device)
    print("data:", describe_source(train_ds).replace("\n", " "))
    print(f"{len(data[0]):,} training / {len(data[2]):,} test images, target {args.target:.0%}, "
          f"at most {args.max_epochs} epochs\n")
    configs = {"fp32": dict(batch=128, lr=2e-3, fast=False), "fast": dict(batch=512, lr=4e-3, fast=True)}
    rows = [run(name, data, device, target=args.target, max_epochs=args.max_epochs,
                compile_ok=device.type == "cuda", **cfg)
            for name, cfg in configs.items() if args.only in (None, name)]
    print(f"\n{'config':<7}{'batch':>6}{'images/s':>11}{'time to target':>16}{'epochs':>7}{'final acc':>10}  notes")
    for r in rows:
        reached = f"{r['reached']:.1f} s" if r["reached"] is not None else "not reached"
        print(f"{r['name']:<7}{r['batch']:>6}{r['ips']:>11,.0f}{reached:>16}{r['epochs']:>7}{r['acc']:>10.1%}  "
              f"{r['notes']}")
    print("\nimages/s: training throughput after the first epoch (which includes compilation); "
          "time to target: training seconds only (evaluation excluded).")


if __name__ == "__main__":
    main()
