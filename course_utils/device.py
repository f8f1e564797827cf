"""Which device the course computes on (lesson 00, used everywhere after).

``get_device()`` prefers CUDA, then Apple's MPS, then the CPU. Set
``COURSE_DEVICE=cpu`` (or ``cuda``, ``cuda:1``, ``mps``) to override, e.g. to
compare speeds or to dodge a flaky GPU driver.
"""

import os

import torch


def get_device() -> torch.device:
    """The device to use: ``COURSE_DEVICE`` if set, else CUDA > MPS > CPU."""
    wanted = os.environ.get("COURSE_DEVICE", "").strip()
    if wanted:
        device = torch.device(wanted)  # raises a clear RuntimeError on typos
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"COURSE_DEVICE={wanted} but CUDA is not available; "
                               "unset COURSE_DEVICE or use 'cpu'.")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"COURSE_DEVICE={wanted} but MPS is not available; "
                               "unset COURSE_DEVICE or use 'cpu'.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def describe_device(device: torch.device | None = None) -> str:
    """One line such as 'cuda:0 (NVIDIA H100, 80 GiB, bf16 ok)' or 'cpu (2 threads)'."""
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        bf16 = "bf16 ok" if torch.cuda.is_bf16_supported() else "no bf16"
        return f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.0f} GiB, {bf16})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"
