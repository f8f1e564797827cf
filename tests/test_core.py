"""Fast mode, device choice, seeding and the environment doctor."""

import random

import numpy as np
import pytest
import torch

from course_utils import device as device_mod
from course_utils.device import describe_device, get_device
from course_utils.doctor import FAIL, OK, Probe, doctor, format_table
from course_utils.fast import fast_notice, is_fast, pick
from course_utils.seed import seed_everything


@pytest.mark.parametrize("value, fast", [("1", True), ("true", True), ("0", False), ("", False)])
def test_fast_mode_switch(monkeypatch, value, fast):
    monkeypatch.setenv("COURSE_FAST", value)
    assert is_fast() is fast
    assert pick(full=100, fast=3) == (3 if fast else 100)
    assert ("FAST MODE" in fast_notice()) is fast


def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "_mps_available", lambda: True)
    assert get_device().type == "mps"
    monkeypatch.setattr(device_mod, "_mps_available", lambda: False)
    assert get_device().type == "cpu"


def test_course_device_overrides(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("COURSE_DEVICE", "cuda:1")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        get_device()
    monkeypatch.setenv("COURSE_DEVICE", "gpu0")
    with pytest.raises(RuntimeError):
        get_device()


def test_describe_device_cpu():
    assert describe_device(torch.device("cpu")).startswith("cpu (")


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert draw() == first
    seed_everything(8)
    assert draw() != first


def test_seed_everything_deterministic_flags():
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        seed_everything(0)
    assert not torch.are_deterministic_algorithms_enabled()


def test_doctor_reports_every_probe_and_survives_a_crash():
    def crashing():
        raise RuntimeError("probe exploded")

    def missing():
        import not_a_real_module_xyz  # noqa: F401

    results = doctor([("ok", lambda: Probe("ok", OK, "fine")), ("crash", crashing), ("missing", missing)])
    assert [r.status for r in results] == [OK, FAIL, FAIL]
    assert "probe exploded" in results[1].detail
    assert "cannot import" in results[2].detail and results[2].fix
    table = format_table(results)
    assert "fix:" in table and table.count("\n") >= 3


def test_real_doctor_covers_the_issue_list():
    names = [r.name for r in doctor()]
    for wanted in ["python", "torch", "torchvision", "device", "ipywidgets", "graphviz dot",
                   "data cache", "offline data", "fast mode", "colab"]:
        assert wanted in names
    assert all(r.status in {"OK", "WARN", "FAIL"} for r in doctor())


def test_doctor_flags_an_unwritable_cache(monkeypatch, tmp_path):
    from course_utils import doctor as doctor_mod

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    monkeypatch.setattr(doctor_mod.tempfile, "NamedTemporaryFile", refuse)
    probe = doctor_mod._data_cache()
    assert probe.status == FAIL and "not writable" in probe.detail and "COURSE_DATA" in probe.fix
