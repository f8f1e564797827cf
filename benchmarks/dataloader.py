"""DataLoader throughput on a deliberately slow dataset (lesson 04, D6).

    python benchmarks/dataloader.py            # full run (well under 2 minutes)
    python benchmarks/dataloader.py --quick    # a few seconds, for a smoke test

Measures samples/s for num_workers 0/1/2, with and without
``persistent_workers`` and ``pin_memory``, over several epochs (so the cost of
starting workers at every epoch shows), and prints a table with the machine's
core count. Two datasets: one whose items *wait* (``time.sleep``, like disk or
network reads; the GIL is released) and one whose items *compute* in pure
Python (the GIL is held, so only processes run them in parallel).

Numbers depend on the machine and on what else runs on it; on a shared
2-core box expect noise of +-20 %.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install
from course_utils.data.slow import SlowDataset  # noqa: E402

# (num_workers, persistent_workers, pin_memory)
CONFIGS = [
    (0, False, False),
    (0, False, True),
    (1, False, False),
    (1, True, False),
    (2, False, False),
    (2, True, False),
    (2, True, True),
]


def accelerator() -> torch.device | None:
    """The device pinned memory would speed copies to (None on a CPU-only machine)."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return None


def measure(dataset, num_workers: int, persistent_workers: bool, pin_memory: bool,
            batch_size: int, epochs: int, device: torch.device | None = None) -> dict:
    """Iterate ``epochs`` full epochs; copy each batch to ``device`` like a training loop would.

    Returns samples/s over all epochs, and the first epoch's time (which pays
    the worker start-up) next to the mean of the later ones.
    """
    if epochs < 1:
        raise ValueError("measure: epochs must be >= 1")
    with warnings.catch_warnings():  # pin_memory without an accelerator warns and does nothing
        warnings.simplefilter("ignore", UserWarning)
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                            persistent_workers=persistent_workers, pin_memory=pin_memory)
        epoch_s = []
        n_samples = 0
        for _ in range(epochs):
            t = time.perf_counter()
            for x, y in loader:
                if device is not None:
                    x = x.to(device, non_blocking=pin_memory)   # async copy needs pinned memory
                    y = y.to(device, non_blocking=pin_memory)
                n_samples += x.shape[0]
            if device is not None and device.type == "cuda":
                torch.cuda.synchronize()
            epoch_s.append(time.perf_counter() - t)
        del loader  # shuts persistent workers down
    total = sum(epoch_s)
    return {"samples_per_s": n_samples / total, "samples": n_samples, "total_s": total,
            "first_epoch_s": epoch_s[0],
            "later_epoch_s": sum(epoch_s[1:]) / (len(epoch_s) - 1) if len(epoch_s) > 1 else float("nan")}


def run_benchmark(dataset, configs=CONFIGS, batch_size: int = 32, epochs: int = 3,
                  device: torch.device | None = None, progress=None) -> list[dict]:
    """One row per ``(num_workers, persistent_workers, pin_memory)`` config."""
    rows = []
    for num_workers, persistent, pin in configs:
        if persistent and num_workers == 0:
            raise ValueError("persistent_workers needs num_workers > 0 (DataLoader refuses it).")
        result = measure(dataset, num_workers, persistent, pin, batch_size, epochs, device)
        rows.append({"num_workers": num_workers, "persistent_workers": persistent,
                     "pin_memory": pin, **result})
        if progress is not None:
            progress(rows[-1])
    base = next((r["samples_per_s"] for r in rows if r["num_workers"] == 0), None)
    for r in rows:
        r["speedup"] = r["samples_per_s"] / base if base else float("nan")
    return rows


def machine_info() -> dict:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    acc = accelerator()
    return {"os.cpu_count()": os.cpu_count(), "usable cores": affinity,
            "torch.get_num_threads()": torch.get_num_threads(),
            "start method": multiprocessing.get_start_method(),
            "torch": torch.__version__, "accelerator": str(acc) if acc else "none (pin_memory is a no-op)"}


def format_table(rows: list[dict], title: str = "") -> str:
    """A plain-text table, one line per config."""
    head = (f"{'num_workers':>11} {'persistent':>10} {'pin_memory':>10} {'samples/s':>10} "
            f"{'epoch 1 (s)':>11} {'later (s)':>9} {'speed-up':>8}")
    lines = ([title] if title else []) + [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['num_workers']:>11} {str(r['persistent_workers']):>10} "
                     f"{str(r['pin_memory']):>10} {r['samples_per_s']:>10.0f} "
                     f"{r['first_epoch_s']:>11.3f} {r['later_epoch_s']:>9.3f} {r['speedup']:>7.2f}x")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU-bound dataset")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)  # the loop itself is light; keep the cores for the workers
    n = 64 if args.quick else 384
    epochs = args.epochs or (2 if args.quick else 3)
    batch_size = 16 if args.quick else 32
    info = machine_info()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    print(f"{n} samples/epoch, batch_size={batch_size}, {epochs} epochs per config, "
          "items are [3, 32, 32] float32")
    device = accelerator()
    t_all = time.perf_counter()
    sleep_s = 0.001 if args.quick else 0.003
    rows = run_benchmark(SlowDataset(n, sleep_s=sleep_s), batch_size=batch_size, epochs=epochs,
                         device=device)
    print()
    print(format_table(rows, f"I/O-like items: time.sleep({sleep_s}) per item (GIL released)"))
    if not args.no_cpu:
        work = 2_000 if args.quick else 20_000
        cpu_ds = SlowDataset(n, sleep_s=0.0, cpu_work=work)
        t = time.perf_counter()
        cpu_ds[0]
        per_item = time.perf_counter() - t
        configs = [c for c in CONFIGS if not c[2]]  # pin_memory does not change CPU-bound work
        rows = run_benchmark(cpu_ds, configs=configs, batch_size=batch_size, epochs=epochs,
                             device=device)
        print()
        print(format_table(rows, f"CPU-bound items: {work} pure-Python iterations per item "
                                 f"(~{per_item * 1e3:.1f} ms, GIL held)"))
    print(f"\nbenchmark took {time.perf_counter() - t_all:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
