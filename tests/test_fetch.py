"""The data layer against a local HTTP server: good file, bad checksum, truncated body,
404 then a good mirror, connection refused, and pre-seeding the cache by hand."""

import hashlib

import pytest

from course_utils.data import fetch as fetch_mod
from course_utils.data.fetch import FetchError, add_to_cache, fetch

BODY = bytes(range(256)) * 400  # 100 KiB of known bytes
GOOD_HASH = "sha256:" + hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def fake_manifest(monkeypatch):
    entries = {"sample.bin": {"hash": GOOD_HASH, "size": len(BODY), "urls": []}}
    monkeypatch.setattr(fetch_mod, "manifest", lambda: entries)
    return entries


def _leftovers(cache):
    return sorted(p.name for p in (cache / "downloads").iterdir()) if (cache / "downloads").exists() else []


def test_good_file_is_downloaded_verified_and_cached(local_server, data_home, fake_manifest):
    local_server.add("/sample.bin", BODY)
    path = fetch("sample.bin", urls=[local_server.url("/sample.bin")], download=True, progressbar=False)
    assert path.read_bytes() == BODY
    # A second call is served from the cache: no new request.
    again = fetch("sample.bin", urls=[local_server.url("/sample.bin")], download=True, progressbar=False)
    assert again == path and local_server.hits == ["/sample.bin"]


def test_wrong_checksum_is_rejected_and_leaves_nothing(local_server, data_home, fake_manifest):
    local_server.add("/sample.bin", BODY[:-1] + b"X")
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch("sample.bin", urls=[local_server.url("/sample.bin")], download=True, progressbar=False)
    assert _leftovers(data_home) == []


def test_truncated_body_is_rejected_and_leaves_nothing(local_server, data_home, fake_manifest):
    local_server.add("/sample.bin", BODY, mode="truncate")
    with pytest.raises(FetchError) as info:
        fetch("sample.bin", urls=[local_server.url("/sample.bin")], download=True, progressbar=False)
    assert "sample.bin" in str(info.value) and "course data add" in str(info.value)
    assert _leftovers(data_home) == []


def test_404_then_good_mirror(local_server, data_home, fake_manifest):
    local_server.add("/mirror/sample.bin", BODY)
    urls = [local_server.url("/gone/sample.bin"), local_server.url("/mirror/sample.bin")]
    path = fetch("sample.bin", urls=urls, download=True, progressbar=False)
    assert path.read_bytes() == BODY
    assert local_server.hits == ["/gone/sample.bin", "/mirror/sample.bin"]


def test_mirrors_from_the_environment_are_tried_after_the_manifest(local_server, data_home,
                                                                   fake_manifest, monkeypatch, refused_url):
    local_server.add("/m2/sample.bin", BODY)
    monkeypatch.setenv("COURSE_MIRRORS", local_server.url("/m1") + "," + local_server.url("/m2/"))
    path = fetch("sample.bin", urls=[refused_url], download=True, progressbar=False)
    assert path.read_bytes() == BODY
    assert local_server.hits == ["/m1/sample.bin", "/m2/sample.bin"]


def test_connection_refused_gives_a_how_to_fix_error(data_home, fake_manifest, refused_url):
    with pytest.raises(FetchError) as info:
        fetch("sample.bin", urls=[refused_url], download=True, progressbar=False)
    message = str(info.value)
    assert refused_url in message and "course data add /path/to/sample.bin" in message
    assert _leftovers(data_home) == []


def test_downloads_are_off_by_default(local_server, data_home, fake_manifest, monkeypatch):
    monkeypatch.delenv("COURSE_ALLOW_DOWNLOAD", raising=False)
    local_server.add("/sample.bin", BODY)
    with pytest.raises(FetchError, match="COURSE_ALLOW_DOWNLOAD=1"):
        fetch("sample.bin", urls=[local_server.url("/sample.bin")])
    assert local_server.hits == []


def test_corrupt_cached_copy_is_replaced(local_server, data_home, fake_manifest):
    (data_home / "downloads").mkdir(parents=True)
    (data_home / "downloads" / "sample.bin").write_bytes(b"corrupt")
    local_server.add("/sample.bin", BODY)
    path = fetch("sample.bin", urls=[local_server.url("/sample.bin")], download=True, progressbar=False)
    assert path.read_bytes() == BODY


def test_add_to_cache_checks_the_hash(tmp_path, data_home, fake_manifest):
    good = tmp_path / "sample.bin"
    good.write_bytes(BODY)
    assert add_to_cache(good).read_bytes() == BODY
    renamed = tmp_path / "download (1).bin"
    renamed.write_bytes(BODY)
    assert add_to_cache(renamed).name == "sample.bin"  # matched by hash
    bad = tmp_path / "bad" / "sample.bin"
    bad.parent.mkdir()
    bad.write_bytes(b"nope")
    with pytest.raises(FetchError, match="does not match the known checksum"):
        add_to_cache(bad)
    with pytest.raises(FetchError, match="is not a file"):
        add_to_cache(tmp_path / "missing.bin")


def test_cli_data_add(tmp_path, data_home, fake_manifest, capsys):
    from course_utils.cli import main

    good = tmp_path / "sample.bin"
    good.write_bytes(BODY)
    assert main(["data", "add", str(good)]) == 0
    assert "verified and filed" in capsys.readouterr().out
    bad = tmp_path / "other.bin"
    bad.write_bytes(b"x")
    assert main(["data", "add", str(bad)]) == 1
    assert "matches no file" in capsys.readouterr().err


def test_real_manifest_is_well_formed():
    files = fetch_mod.manifest()
    assert {"cifar-10-python.tar.gz", "aclImdb_v1.tar.gz"} <= set(files)
    for name, entry in files.items():
        algorithm, _, digest = entry["hash"].partition(":")
        assert algorithm in {"sha256", "md5"} and len(digest) in {32, 64}, name
        assert entry["urls"] and all(u.startswith("https://") for u in entry["urls"]), name


def test_a_failed_download_removes_only_its_own_partial_file(local_server, data_home, fake_manifest):
    # Another download's temporary file (pooch names them tmp*) and an unrelated file in the
    # same folder must survive this download's failure.
    downloads = data_home / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "tmpkeep_other_download").write_bytes(b"half of another archive")
    (downloads / "tmp_notes.txt").write_text("mine")
    local_server.add("/sample.bin", BODY[:-1] + b"X")
    with pytest.raises(FetchError):
        fetch("sample.bin", urls=[local_server.url("/sample.bin")], download=True, progressbar=False)
    assert _leftovers(data_home) == ["tmp_notes.txt", "tmpkeep_other_download"]
    local_server.add("/good.bin", BODY)
    path = fetch("sample.bin", urls=[local_server.url("/good.bin")], download=True, progressbar=False)
    assert path.read_bytes() == BODY
    assert _leftovers(data_home) == ["sample.bin", "tmp_notes.txt", "tmpkeep_other_download"]
