"""The data layer: registry, downloads (resume, checksums), safe unpacking, the mirror, the CLI.

Nothing here touches the internet: downloads come from an HTTP server on 127.0.0.1 started by the
test, archives are built in tmp_path, and "offline" is a closed local port.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import io as bytes_io
import os
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from i2icourse import images as image_io
from i2icourse.data import (REGISTRY, ArchiveLimits, ChecksumError, DataError, DataUnavailableError, Dataset,
                            UnsafeArchiveError, UnverifiedDownloadWarning, data_root, download, extract, fetch, get,
                            image_files)
from i2icourse.data.registry import human_size

REPO = Path(__file__).resolve().parents[1]
SHARED = Path("/work/shared/data") if Path("/work/shared/data").is_dir() else REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Every test gets its own cache and no mirror, whatever the environment says."""
    monkeypatch.setenv("I2I_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("I2I_DATA_MIRROR", raising=False)


# ----------------------------------------------------------------------------------------------
# A local HTTP server with the failures a real one has
# ----------------------------------------------------------------------------------------------

class Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.ignore_range = False
        self.drop_after: dict[str, int] = {}  # path -> bytes sent before the connection drops (once)
        self.no_length: set[str] = set()  # paths sent without Content-Length: the body ends when the connection does
        self.stream: dict[str, int] = {}  # path -> bytes of zeros made up as they are sent (no file in memory)
        self.sent: dict[str, int] = {}  # path -> bytes of a stream actually sent before the client stopped
        self.base = ""

    def url(self, path: str) -> str:
        return self.base + path


def _handler(state: Server):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            state.requests.append((self.path, self.headers.get("Range")))
            if self.path in state.stream:
                self._stream(state.stream[self.path])
                return
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start, rng = 0, self.headers.get("Range")
            if rng and not state.ignore_range:
                start = int(rng.split("=")[1].split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            payload = body[start:]
            if self.path not in state.no_length:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            cut = state.drop_after.pop(self.path, None)
            self.wfile.write(payload if cut is None else payload[:cut])

        def _stream(self, total: int) -> None:
            self.send_response(200)
            if self.path not in state.no_length:
                self.send_header("Content-Length", str(total))
            self.end_headers()
            block, sent = bytes(1 << 16), 0
            try:
                while sent < total:
                    self.wfile.write(block[:total - sent])
                    sent += min(len(block), total - sent)
                    state.sent[self.path] = sent
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: what it did not take was never made

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def server():
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def closed_port_url(path: str) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"  # nothing listens there any more: connection refused


# ----------------------------------------------------------------------------------------------
# Archives
# ----------------------------------------------------------------------------------------------

def png_bytes(seed: int = 0) -> bytes:
    buf = bytes_io.BytesIO()
    from PIL import Image
    Image.new("RGB", (8, 6), (seed * 40 % 256, 100, 200)).save(buf, format="PNG")
    return buf.getvalue()


def toy_files() -> dict[str, bytes]:
    return {"toy/train/a.png": png_bytes(1), "toy/train/b.png": png_bytes(2), "toy/test/c.png": png_bytes(3)}


def make_tar(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, bytes_io.BytesIO(data))
    return path


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def toy(urls=("http://127.0.0.1:9/toy.tar.gz",), filename="toy.tar.gz", sha256=None, size=None, **kw) -> Dataset:
    return Dataset(name="toy", title="a toy dataset", licence="test data", citation="none",
                   homepage="http://127.0.0.1/", layout=("train", "test"), urls=tuple(urls), filename=filename,
                   sha256=sha256, size=size, subdir="toy", **kw)


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


# ----------------------------------------------------------------------------------------------
# Downloads
# ----------------------------------------------------------------------------------------------

def test_fetch_downloads_verifies_unpacks_and_second_fetch_is_instant(server, tmp_path):
    data = make_tar(tmp_path / "toy.tar.gz", toy_files()).read_bytes()
    server.files["/toy.tar.gz"] = data
    entry = toy(urls=[server.url("/toy.tar.gz")], sha256=sha(data), size=len(data))

    path = fetch(entry, progress=False)
    cache = tmp_path / "cache"
    assert path == cache / "toy" / "toy"
    assert [p.name for p in image_files(entry, "train")] == ["a.png", "b.png"]
    assert image_io.load_image(path / "test" / "c.png").shape == (3, 6, 8)
    assert (cache / "toy" / ".i2icourse.json").is_file()
    assert not any((cache / "downloads").iterdir())  # archive removed after unpacking, no .part left
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]

    n = len(server.requests)
    start = time.perf_counter()
    assert fetch(entry, progress=False) == path
    assert time.perf_counter() - start < 0.5 and len(server.requests) == n  # no network the second time


def test_checksum_mismatch_is_clear_and_leaves_nothing_that_looks_complete(server, tmp_path):
    data = make_tar(tmp_path / "toy.tar.gz", toy_files()).read_bytes()
    server.files["/toy.tar.gz"] = data
    wrong = "0" * 64
    entry = toy(urls=[server.url("/toy.tar.gz")], sha256=wrong)

    with pytest.raises(ChecksumError) as err:
        fetch(entry, progress=False)
    message = str(err.value)
    assert "toy.tar.gz" in message and wrong in message and sha(data) in message
    downloads = tmp_path / "cache" / "downloads"
    assert not (downloads / "toy.tar.gz").exists() and not (downloads / "toy.tar.gz.part").exists()
    assert not (tmp_path / "cache" / "toy").exists()


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    data = os.urandom(300_000)
    server.files["/big.bin"] = data
    server.drop_after["/big.bin"] = 120_000  # the first response breaks off after 120 kB
    dest = download(server.url("/big.bin"), tmp_path / "big.bin", sha256=sha(data), progress=False)
    assert dest.read_bytes() == data
    assert server.requests == [("/big.bin", None), ("/big.bin", "bytes=120000-")]
    assert not (tmp_path / "big.bin.part").exists()


def test_part_file_from_an_earlier_run_is_resumed(server, tmp_path):
    data = os.urandom(200_000)
    server.files["/big.bin"] = data
    (tmp_path / "big.bin.part").write_bytes(data[:100_000])
    dest = download(server.url("/big.bin"), tmp_path / "big.bin", sha256=sha(data), size=len(data), progress=False)
    assert dest.read_bytes() == data
    assert server.requests == [("/big.bin", "bytes=100000-")]


def test_server_that_ignores_range_still_gives_the_right_file(server, tmp_path):
    data = os.urandom(200_000)
    server.files["/big.bin"] = data
    server.ignore_range = True
    (tmp_path / "big.bin.part").write_bytes(b"x" * 50_000)  # not even the right bytes
    dest = download(server.url("/big.bin"), tmp_path / "big.bin", sha256=sha(data), progress=False)
    assert dest.read_bytes() == data
    assert server.requests == [("/big.bin", "bytes=50000-")]  # asked to resume, got the whole file: restarted


def test_the_next_address_is_tried_and_a_finished_part_is_not_fetched_again(server, tmp_path):
    data = os.urandom(50_000)
    server.files["/new/f.bin"] = data
    urls = [server.url("/old/f.bin"), server.url("/new/f.bin")]  # the first one is gone (404)
    assert download(urls, tmp_path / "a.bin", sha256=sha(data), progress=False).read_bytes() == data
    (tmp_path / "b.bin.part").write_bytes(data)  # complete, but never renamed (say the process was killed)
    server.requests.clear()
    assert download(urls[1], tmp_path / "b.bin", sha256=sha(data), progress=False).read_bytes() == data
    assert server.requests == [("/new/f.bin", "bytes=50000-")]  # answered 416: nothing left to send


def test_a_download_without_checksum_works_but_says_it_is_unverified(server, tmp_path):
    server.files["/f.bin"] = b"hello"
    with pytest.warns(UnverifiedDownloadWarning, match="could not verify"):
        dest = download(server.url("/f.bin"), tmp_path / "f.bin", progress=False)
    assert dest.read_bytes() == b"hello"

@pytest.mark.parametrize("build", [make_tar, make_zip], ids=["tar.gz", "zip"])
def test_a_download_cut_short_without_length_or_checksum_is_not_installed(server, tmp_path, build):
    data = build(tmp_path / "toy.archive", toy_files()).read_bytes()
    server.files["/toy.archive"] = data
    server.no_length.add("/toy.archive")  # nothing tells the client how long the body is...
    server.drop_after["/toy.archive"] = len(data) // 2  # ...and the connection closes half-way (once)
    entry = toy(urls=[server.url("/toy.archive")], filename="toy.archive")

    with pytest.warns(UnverifiedDownloadWarning), pytest.raises(DataError) as err:
        fetch(entry, progress=False)
    message = str(err.value)
    assert "toy.archive" in message and "incomplete" in message and "fetch('toy') again" in message
    cache = tmp_path / "cache"
    assert not (cache / "toy").exists() and not (cache / "downloads" / "toy.archive").exists()

    with pytest.warns(UnverifiedDownloadWarning):  # the broken download was deleted: the next fetch starts afresh
        path = fetch(entry, progress=False)
    assert sorted(p.name for p in (path / "train").iterdir()) == ["a.png", "b.png"]


@pytest.mark.filterwarnings("ignore::i2icourse.data.UnverifiedDownloadWarning")
def test_an_archive_with_image_files_missing_is_caught_by_the_recorded_count(server, tmp_path):
    files = toy_files()
    del files["toy/train/b.png"]  # a well-formed archive that lacks one of the dataset's images
    data = make_tar(tmp_path / "toy.tar", files, mode="w").read_bytes()
    server.files["/toy.tar"] = data
    entry = toy(urls=[server.url("/toy.tar")], filename="toy.tar", n_images=3)

    with pytest.raises(DataError) as err:
        fetch(entry, progress=False)
    message = str(err.value)
    assert "2 image files" in message and "3" in message and "fetch('toy') again" in message
    assert not (tmp_path / "cache" / "toy").exists() and not (tmp_path / "cache" / "downloads" / "toy.tar").exists()

    archive = make_tar(tmp_path / "short.tar", files, mode="w")
    with pytest.raises(DataError, match=r"(?s)2 image files.*expected 3.*short\.tar"):
        extract(archive, tmp_path / "out", entry)
    assert not (tmp_path / "out").exists()
    assert extract(make_tar(tmp_path / "whole.tar", toy_files(), mode="w"), tmp_path / "out", entry).is_dir()


def test_offline_without_mirror_gives_one_clear_message(tmp_path):
    url = closed_port_url("/facades.tar.gz")
    entry = dataclasses.replace(get("facades"), urls=(url,))
    with pytest.raises(DataUnavailableError) as err:
        fetch(entry, progress=False)
    message = str(err.value)
    archive = tmp_path / "cache" / "downloads" / "facades.tar.gz"
    for part in ("'facades'", url, "refused", "I2I_DATA_MIRROR", str(archive), "Colab", "train, val, test"):
        assert part in message, part
    assert not archive.exists() and not (tmp_path / "cache" / "facades").exists()


def test_a_manual_archive_placed_where_the_message_says_is_used(server, tmp_path):
    data = make_tar(tmp_path / "toy.tar.gz", toy_files()).read_bytes()
    entry = toy(urls=[closed_port_url("/toy.tar.gz")], sha256=sha(data))
    with pytest.raises(DataUnavailableError) as err:
        fetch(entry, progress=False)
    archive = tmp_path / "cache" / "downloads" / "toy.tar.gz"
    assert str(archive) in str(err.value)
    archive.write_bytes(data)  # the user downloads it by hand
    assert (fetch(entry, progress=False) / "train" / "a.png").is_file()


def test_a_dataset_that_needs_a_login_explains_how_and_accepts_what_the_user_puts_there(tmp_path):
    with pytest.raises(DataUnavailableError) as err:
        fetch("cityscapes")
    target = tmp_path / "cache" / "cityscapes"
    assert "cityscapes-dataset.com" in str(err.value) and str(target) in str(err.value)
    (target / "gtFine").mkdir(parents=True)
    (target / "leftImg8bit").mkdir()
    assert fetch("cityscapes") == target


# ----------------------------------------------------------------------------------------------
# Safe unpacking
# ----------------------------------------------------------------------------------------------

def _tar_with(path: Path, members: list[tuple[str, str, str]]) -> Path:
    """members: (name, kind, data-or-link) with kind in file, sym, hard, chr."""
    with tarfile.open(path, "w") as tar:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, bytes_io.BytesIO(value.encode()))
                continue
            info.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE,
                         "dir": tarfile.DIRTYPE}[kind]
            info.linkname = value
            tar.addfile(info)
    return path


def _zip_with(path: Path, members: list[tuple[str, str, str]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, kind, value in members:
            info = zipfile.ZipInfo(name)
            if kind == "sym":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, value)
    return path


OK = ("ok/readme.txt", "file", "fine")
EVIL = [
    ("tar-dotdot", _tar_with, [OK, ("../evil.txt", "file", "x")]),
    ("tar-absolute", _tar_with, [OK, ("/tmp/i2icourse-evil-abs.txt", "file", "x")]),
    ("tar-symlink-out", _tar_with, [OK, ("ok/link", "sym", "../../evil_dir"), ("ok/link/evil.txt", "file", "x")]),
    ("tar-symlink-absolute", _tar_with, [OK, ("ok/link", "sym", "/tmp")]),
    ("tar-hardlink-out", _tar_with, [OK, ("ok/hard", "hard", "../outside.txt")]),
    ("tar-symlink-chain", _tar_with, [OK, ("b", "sym", "."), ("a", "sym", "b/.."), ("a/evil.txt", "file", "x")]),
    ("tar-device", _tar_with, [OK, ("ok/dev", "chr", "")]),
    ("zip-dotdot", _zip_with, [OK, ("../evil.txt", "file", "x")]),
    ("zip-absolute", _zip_with, [OK, ("/tmp/i2icourse-evil-abs.txt", "file", "x")]),
    ("zip-symlink-out", _zip_with, [OK, ("ok/link", "sym", "../../evil_dir")]),
]


@pytest.mark.parametrize("label,build,members", EVIL, ids=[e[0] for e in EVIL])
def test_unsafe_archives_are_refused_and_nothing_lands_outside(tmp_path, label, build, members):
    (tmp_path / "outside.txt").write_text("keep")
    work = tmp_path / "work"
    work.mkdir()
    archive = build(tmp_path / f"{label}.archive", members)
    before = tree(tmp_path)
    with pytest.raises(UnsafeArchiveError, match="refused"):
        extract(archive, work / "target")
    assert tree(tmp_path) == before  # no target, no leftover staging folder, nothing written anywhere else
    assert not Path("/tmp/i2icourse-evil-abs.txt").exists()
    assert (tmp_path / "outside.txt").read_text() == "keep"


@pytest.mark.parametrize("build", [make_tar, make_zip])
def test_good_archives_unpack_atomically_with_a_marker(tmp_path, build):
    archive = build(tmp_path / "toy.archive", toy_files())
    path = extract(archive, tmp_path / "out", toy())
    assert path == tmp_path / "out" / "toy"
    assert sorted(p.name for p in (path / "train").iterdir()) == ["a.png", "b.png"]
    assert (tmp_path / "out" / ".i2icourse.json").is_file()
    with pytest.raises(DataError, match="already exists"):
        extract(archive, tmp_path / "out")


def test_an_archive_without_the_expected_layout_is_not_installed(tmp_path):
    archive = make_zip(tmp_path / "toy.zip", {"something/else.txt": b"x"})
    with pytest.raises(DataError, match="does not hold 'toy'"):
        extract(archive, tmp_path / "out", toy())
    assert not (tmp_path / "out").exists()


def _fake_tool(folder: Path, script: str) -> None:
    folder.mkdir()
    tool = folder / "unrar"
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)


@pytest.mark.filterwarnings("ignore::i2icourse.data.UnverifiedDownloadWarning")
def test_rar_goes_through_an_external_tool_and_its_output_is_checked(tmp_path, monkeypatch):
    archive = tmp_path / "waterloo.rar"
    archive.write_bytes(b"Rar!\x1a\x07\x01\x00" + b"\x00" * 32)
    entry = dataclasses.replace(get("waterloo"), urls=(closed_port_url("/w.rar"),), filename="waterloo.rar")

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DataUnavailableError, match="apt-get install unrar"):
        fetch(entry, mirror=tmp_path)  # the archive is in the "mirror"

    monkeypatch.setenv("PATH", str(tmp_path / "evil"))  # $5 is the destination: unrar x -o+ -y ARCHIVE DEST/
    _fake_tool(tmp_path / "evil", '/bin/mkdir -p "$5/exploration_database_and_code"\n/bin/ln -s / "$5/root"\n')
    with pytest.raises(UnsafeArchiveError, match="outside the target"):
        fetch(entry, mirror=tmp_path)
    assert not (tmp_path / "cache" / "waterloo").exists()

    monkeypatch.setenv("PATH", str(tmp_path / "good"))
    _fake_tool(tmp_path / "good", '/bin/mkdir -p "$5/exploration_database_and_code/pristine_images"\n')
    assert fetch(entry, mirror=tmp_path) == tmp_path / "cache" / "waterloo" / "exploration_database_and_code"

# a -> x/x/.../x/y/../../..: inside the folder while x does not exist; once x -> . exists, it climbs to /
CHAIN = [("y", "dir", ""), ("a", "sym", "x/" * 20 + "y/" + "../" * 21), ("x", "sym", ".")]


@pytest.mark.parametrize("build", [_tar_with, _zip_with], ids=["tar", "zip"])
def test_a_link_chain_is_refused_and_nothing_is_installed(tmp_path, build):
    archive = build(tmp_path / "chain.archive", [OK, *CHAIN])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnsafeArchiveError, match="link.*refused"):
        extract(archive, work / "target")
    assert tree(work) == set()  # no target, no staging folder, no lock file


@pytest.mark.parametrize("build", [_tar_with, _zip_with], ids=["tar", "zip"])
def test_links_inside_the_folder_are_refused_too(tmp_path, build):
    archive = build(tmp_path / "links.archive", [OK, ("ok/same", "sym", "readme.txt")])
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract(archive, tmp_path / "target")
    assert not (tmp_path / "target").exists()


def test_the_finished_tree_is_checked_whatever_made_it(tmp_path, monkeypatch):
    archive = tmp_path / "waterloo.rar"
    archive.write_bytes(b"Rar!\x1a\x07\x01\x00" + b"\x00" * 32)
    chain = CHAIN[1][2]
    _fake_tool(tmp_path / "chain", f'cd "$5" && /bin/mkdir y && /bin/ln -s {chain} a && /bin/ln -s . x\n')
    monkeypatch.setenv("PATH", str(tmp_path / "chain"))
    with pytest.raises(UnsafeArchiveError, match="link.*refused"):  # the unpacked tree has links: refused
        extract(archive, tmp_path / "target")
    assert not (tmp_path / "target").exists()


CLASHES = {
    "file-then-folder": [("a", "file", "x"), ("a/", "file", "")],
    "file-then-member-below": [("a", "file", "x"), ("a/b.txt", "file", "y")],
    "folder-then-file": [("a/", "file", ""), ("a", "file", "x")],
}


@pytest.mark.parametrize("members", CLASHES.values(), ids=CLASHES.keys())
def test_a_zip_with_a_file_and_a_folder_of_the_same_name_gives_a_clear_error(tmp_path, members):
    archive = _zip_with(tmp_path / "clash.zip", [OK, *members])
    with pytest.raises(DataError) as err:
        extract(archive, tmp_path / "target")
    message = str(err.value)
    assert "clash.zip" in message and repr(members[1][0]) in message and "same name" in message
    assert not isinstance(err.value.__cause__, OSError) or err.value.__suppress_context__
    assert not (tmp_path / "target").exists()


# ----------------------------------------------------------------------------------------------
# Limits: archive bombs, deep trees, too many files, downloads longer than recorded
# ----------------------------------------------------------------------------------------------

def _deflated_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


ZEROS = {"bomb/zeros.bin": bytes(8 << 20)}   # 8 MiB of zeros: a few KiB packed, over 200 times smaller


@pytest.mark.parametrize("build", [_deflated_zip, make_tar], ids=["zip", "tar.gz"])
def test_an_archive_bomb_is_refused_by_its_ratio(tmp_path, build):
    archive = build(tmp_path / "bomb.archive", ZEROS)
    assert archive.stat().st_size < 40_000
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnsafeArchiveError, match=r"bomb\.archive: unpacks to more than .* \(200 times the "
                                                 r"archive's size of .*\); refused as a decompression bomb"):
        extract(archive, work / "target")
    assert tree(work) == set()   # no target, no staging folder, no lock file


def test_the_recorded_size_sets_the_unpacked_cap(tmp_path):
    archive = make_tar(tmp_path / "toy.tar.gz", {**toy_files(), "toy/padding.bin": bytes(3 << 20)})
    packed = archive.stat().st_size
    with pytest.raises(UnsafeArchiveError, match=rf"200 times the archive's recorded size of {human_size(packed)}\)"):
        extract(archive, tmp_path / "small", toy(size=packed))
    assert extract(archive, tmp_path / "large", toy(size=100 << 20)) == tmp_path / "large" / "toy"


@pytest.mark.parametrize("build", [make_zip, make_tar], ids=["zip", "tar.gz"])
def test_the_absolute_cap_holds_whatever_the_ratio(tmp_path, build):
    archive = build(tmp_path / "big.archive", {"big/noise.bin": os.urandom(3000)})   # incompressible
    with pytest.raises(UnsafeArchiveError, match=r"big\.archive: unpacks to more than 1000 B \(the limit for "
                                                 r"any archive\); refused: no dataset is so large"):
        extract(archive, tmp_path / "target", limits=ArchiveLimits(max_bytes=1000))
    assert extract(archive, tmp_path / "ok", limits=ArchiveLimits(max_bytes=3000)) == tmp_path / "ok"


@pytest.mark.parametrize("build", [make_zip, make_tar], ids=["zip", "tar.gz"])
def test_an_archive_with_too_many_members_is_refused(tmp_path, build):
    archive = build(tmp_path / "many.archive", {f"many/{i}.txt": b"x" for i in range(8)})
    with pytest.raises(UnsafeArchiveError, match=r"many\.archive: more than 5 files and folders"):
        extract(archive, tmp_path / "target", limits=ArchiveLimits(max_members=5))
    assert not (tmp_path / "target").exists()
    # the unpacked tree is counted again, with its folders: 8 files and the folder many/
    assert extract(archive, tmp_path / "ok", limits=ArchiveLimits(max_members=9)) == tmp_path / "ok"


@pytest.mark.parametrize("depth", [1_200, 10_000])
@pytest.mark.parametrize("build", [_zip_with, _tar_with], ids=["zip", "tar"])
def test_a_deep_tree_is_refused_by_name_not_by_recursion_error(tmp_path, build, depth):
    archive = build(tmp_path / "deep.archive", [OK, ("d/" * depth + "f.txt", "file", "x")])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnsafeArchiveError, match=rf"deep\.archive: member 'd/d/.*/f\.txt' lies {depth + 1} folders "
                                                 "deep, more than the 32 allowed"):
        extract(archive, work / "target")
    assert tree(work) == set()


def test_a_deep_tree_made_by_a_rar_tool_is_refused_and_removed(tmp_path, monkeypatch):
    archive = tmp_path / "deep.rar"
    archive.write_bytes(b"Rar!\x1a\x07\x01\x00" + b"\x00" * 32)
    _fake_tool(tmp_path / "deep", f'/bin/mkdir -p "$5/{"d/" * 1_200}"\n')   # deeper than os.walk and rmtree recurse
    monkeypatch.setenv("PATH", str(tmp_path / "deep"))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnsafeArchiveError, match="deep.rar: member 'd/d/.*' lies 33 folders deep"):
        extract(archive, work / "target")
    assert tree(work) == set()   # the staging folder, 1,200 levels deep, is gone too


@pytest.mark.parametrize("announced", [False, True], ids=["streamed", "announced"])
def test_a_download_longer_than_recorded_is_stopped_at_once(server, tmp_path, announced):
    server.stream["/big.tar.gz"] = 200 << 20   # 200 MiB, made up as they are sent
    if not announced:
        server.no_length.add("/big.tar.gz")
    entry = toy(urls=[server.url("/big.tar.gz")], filename="big.tar.gz", size=300_000)
    what = "the server announces 209715200 bytes" if announced else "more than 300000 bytes came"
    with pytest.raises(ChecksumError, match=rf"big\.tar\.gz: {what} from {server.url('/big.tar.gz')}, but its "
                                            "recorded size is 300000 bytes.*stopped and deleted"):
        fetch(entry, progress=False)
    downloads = tmp_path / "cache" / "downloads"
    assert not (downloads / "big.tar.gz").exists() and not (downloads / "big.tar.gz.part").exists()
    assert server.sent.get("/big.tar.gz", 0) < 32 << 20   # far fewer than 200 MiB left the server


# ----------------------------------------------------------------------------------------------
# Two processes at once
# ----------------------------------------------------------------------------------------------

N_MANY = 3000
RACER = r"""
import sys, time
from pathlib import Path
from i2icourse.data import Dataset, extract, fetch
how, archive, target, ready, go, n = sys.argv[1:]
archive, target = Path(archive), Path(target)
entry = Dataset(name=target.name, title="many files", licence="test data", citation="none",
                homepage="http://127.0.0.1/", layout=(".",), urls=("http://127.0.0.1:9/many.zip",),
                filename=archive.name, subdir="many", n_images=int(n))
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.002)
if how == "extract":
    print(extract(archive, target, entry))
else:
    print(fetch(entry, target.parent, mirror=archive.parent, progress=False))
"""


def _race(tmp_path: Path, *args: str, n: int = 2) -> list[subprocess.CompletedProcess]:
    """Start ``n`` processes running RACER, let them go at the same instant, and wait for all of them."""
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(n)]
    procs = [subprocess.Popen([sys.executable, "-c", RACER, *args, str(r), str(go), str(N_MANY)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in ready]
    deadline = time.monotonic() + 120
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return results


@pytest.mark.parametrize("how", ["extract", "fetch"])
def test_two_processes_installing_the_same_dataset_both_get_it_whole(tmp_path, how):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = make_zip(mirror / "many.zip", {f"many/{i:05d}.png": b"%d" % i for i in range(N_MANY)})
    target = tmp_path / "cache" / "many"

    results = _race(tmp_path, how, str(archive), str(target))
    for r in results:
        assert r.returncode == 0, r.stderr
    assert {r.stdout.strip() for r in results} == {str(target / "many")}
    assert len(list((target / "many").iterdir())) == N_MANY
    assert (target / ".i2icourse.json").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["many"]  # no staging folder, no lock file left


def test_only_staging_folders_of_processes_that_are_gone_are_removed(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    abandoned = tmp_path / f".out.{gone.pid}.k1ll3d_0.tmp"  # left by a process that was killed
    live = tmp_path / f".out.{os.getpid()}.running.tmp"  # another install, still going on
    for folder in (abandoned, live):
        (folder / "toy").mkdir(parents=True)
    archive = make_zip(tmp_path / "toy.zip", toy_files())

    assert extract(archive, tmp_path / "out", toy()) == tmp_path / "out" / "toy"
    assert not abandoned.exists() and (live / "toy").is_dir()


LOCK_HOLDER = r"""
import importlib, sys, time
from pathlib import Path
locks = importlib.import_module("i2icourse.data.locks")
target, method, held, seconds = sys.argv[1:]
with locks.dataset_lock(Path(target), method=method):
    Path(held).touch()
    time.sleep(float(seconds))
    Path(held).write_text(repr(time.time()))  # the moment just before the lock is let go
"""


def _hold_lock(tmp_path: Path, method: str, seconds: float) -> tuple[subprocess.Popen, Path]:
    held = tmp_path / "held"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(tmp_path / "toy"), method, str(held),
                               str(seconds)], cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not held.exists() and time.monotonic() < deadline and holder.poll() is None:
        time.sleep(0.01)
    assert held.exists(), holder.stderr.read() if holder.poll() is not None else "the holder never took the lock"
    return holder, held


@pytest.mark.parametrize("method", ["flock", "pidfile"])
def test_the_dataset_lock_waits_for_its_holder(tmp_path, method):
    locks = importlib.import_module("i2icourse.data.locks")
    if method == "flock" and not locks.HAVE_FLOCK:
        pytest.skip("no fcntl.flock on this system")
    holder, held = _hold_lock(tmp_path, method, seconds=1.0)
    with locks.dataset_lock(tmp_path / "toy", method=method):
        got = time.time()
    assert holder.wait(timeout=60) == 0
    assert got >= float(held.read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["held"]  # the lock file is gone with the lock


@pytest.mark.parametrize("method", ["flock", "pidfile"])
def test_the_dataset_lock_of_a_killed_process_does_not_block(tmp_path, method):
    locks = importlib.import_module("i2icourse.data.locks")
    if method == "flock" and not locks.HAVE_FLOCK:
        pytest.skip("no fcntl.flock on this system")
    holder, _ = _hold_lock(tmp_path, method, seconds=600)
    holder.kill()
    holder.wait(timeout=60)
    got = threading.Event()

    def take() -> None:
        with locks.dataset_lock(tmp_path / "toy", method=method):
            got.set()

    threading.Thread(target=take, daemon=True).start()
    assert got.wait(timeout=30), "the lock of a killed process was never released"


# ----------------------------------------------------------------------------------------------
# The mirror
# ----------------------------------------------------------------------------------------------

def _stage_set5(mirror: Path) -> Path:
    folder = mirror / "sr_benchmarks" / "Set5"
    for i, name in enumerate(["baby", "bird", "butterfly", "head", "woman"]):
        image_io.save_image(torch.rand(3, 12, 10 + i), folder / f"{name}.png")
    return folder


def test_mirror_folder_is_used_as_is_and_never_written(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    folder = _stage_set5(mirror)
    before = tree(mirror)
    monkeypatch.setenv("I2I_DATA_MIRROR", str(mirror))
    path = fetch("Set5")
    assert path == folder
    files = image_io.list_images(path)
    assert len(files) == 5 and image_io.load_image(files[0]).shape[0] == 3
    assert tree(mirror) == before and not (tmp_path / "cache").exists()


def test_mirror_that_lacks_the_dataset_says_where_it_looked(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "sr_benchmarks" / "Set5").mkdir(parents=True)  # empty: not a complete Set5
    monkeypatch.setenv("I2I_DATA_MIRROR", str(mirror))
    with pytest.raises(DataUnavailableError) as err:
        fetch("Set5")
    message = str(err.value)
    assert str(mirror / "sr_benchmarks" / "Set5") in message and "Set5_HR.tar.gz" in message
    assert "I2I_DATA_MIRROR" in message


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared data mirror at {SHARED}")
@pytest.mark.parametrize("name,count", [("Set5", 5), ("Set14", 14), ("CBSD68", 68), ("BSD68", 68)])
def test_shared_mirror(monkeypatch, name, count):
    monkeypatch.setenv("I2I_DATA_MIRROR", str(SHARED))
    files = image_files(name)
    assert len(files) == count
    x = image_io.load_image(files[0])
    assert x.shape[0] == 3 and 0 <= float(x.min()) <= float(x.max()) <= 1


def test_mirror_archive_is_verified_and_unpacked_into_the_cache(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    data = make_tar(mirror / "toy.tar.gz", toy_files()).read_bytes()
    before = tree(mirror)

    with pytest.raises(ChecksumError, match="left untouched"):
        fetch(toy(sha256="f" * 64), mirror=mirror)
    assert tree(mirror) == before and not (tmp_path / "cache" / "toy").exists()

    entry = toy(sha256=sha(data), size=len(data))  # its URL is a dead port: the mirror must suffice
    path = fetch(entry, mirror=mirror)
    assert path == tmp_path / "cache" / "toy" / "toy" and (path / "train" / "b.png").is_file()
    assert tree(mirror) == before


def test_data_root_follows_argument_then_environment(tmp_path, monkeypatch):
    assert data_root(tmp_path / "x") == tmp_path / "x"
    assert data_root() == tmp_path / "cache"
    monkeypatch.delenv("I2I_DATA")
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "i2icourse"
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-x")
    assert data_root() == Path("/content/data")


# ----------------------------------------------------------------------------------------------
# The registry and the command line
# ----------------------------------------------------------------------------------------------

REQUIRED = {"Set5", "Set14", "BSDS500", "CBSD68", "STL10", "facades", "maps", "cityscapes", "horse2zebra",
            "waterloo", "semantic_drone", "DPED", "yale_b_cropped"}


def test_registry_entries_are_complete():
    assert REQUIRED <= set(REGISTRY)
    labels = [label.lower() for d in REGISTRY.values() for label in (d.name, *d.aliases)]
    assert len(labels) == len(set(labels))
    for d in REGISTRY.values():
        assert d.urls and all(u.startswith(("http://", "https://")) for u in d.urls) or d.manual, d.name
        assert d.licence and d.citation and d.homepage.startswith("http") and d.layout, d.name
        assert d.sha256 is None or len(d.sha256) == 64
        assert get(d.name) is d
    assert get("stl-10") is REGISTRY["STL10"] and get("bsd68") is REGISTRY["CBSD68"]
    with pytest.raises(LookupError, match="Did you mean 'facades'"):
        get("facade")


def test_cli_list_runs():
    result = subprocess.run([sys.executable, str(REPO / "data_scripts" / "download.py"), "--list"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in REQUIRED) and "licence" in result.stdout


def _cli_main():
    spec = importlib.util.spec_from_file_location("download_cli", REPO / "data_scripts" / "download.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_cli_fetches_from_a_mirror_and_fails_with_the_clear_message(tmp_path, capsys):
    main = _cli_main()
    folder = _stage_set5(tmp_path / "mirror")
    assert main(["Set5", "--mirror", str(tmp_path / "mirror"), "--root", str(tmp_path / "c"), "--quiet"]) == 0
    assert str(folder) in capsys.readouterr().out

    assert main(["cityscapes", "nosuchset", "--root", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err
    assert "cityscapes-dataset.com" in err and "no dataset named 'nosuchset'" in err

def test_cli_reports_an_archive_that_cannot_be_unpacked_without_a_traceback(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    _zip_with(mirror / get("CBSD68").archive_name, [("a", "file", "x"), ("a/b.png", "file", "y")])
    result = subprocess.run([sys.executable, str(REPO / "data_scripts" / "download.py"), "CBSD68", "--quiet",
                             "--mirror", str(mirror), "--root", str(tmp_path / "cache")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "CBSD68: failed" in result.stderr and "'a/b.png'" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_data_never_imports_models_or_train():
    code = ("import sys, i2icourse.data; bad = [m for m in sys.modules if m.startswith(('i2icourse.models', "
            "'i2icourse.train'))]; assert not bad, bad")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60).returncode == 0


def test_the_names_of_every_step_are_importable_from_fetch_as_the_same_objects():
    # fetch.py keeps the dataset-level steps and names what the modules of the others define.
    fetch_module = importlib.import_module("i2icourse.data.fetch")
    homes = {"archives": ["ArchiveLimits", "UnsafeArchiveError", "archive_kind", "extract"],
             "download": ["ChecksumError", "UnverifiedDownloadWarning", "download", "sha256sum"],
             "errors": ["DataError", "DataUnavailableError"], "layout": ["MARKER"], "locks": ["HAVE_FLOCK"]}
    for home, names in homes.items():
        module = importlib.import_module(f"i2icourse.data.{home}")
        for name in names:
            assert getattr(fetch_module, name) is getattr(module, name), f"{name} of i2icourse.data.{home}"
            assert name in fetch_module.__all__, name
