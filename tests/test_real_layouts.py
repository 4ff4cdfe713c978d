"""The loaders on each real dataset's published layout, from miniature archives served on 127.0.0.1.

``tests/minidata.py`` builds every archive as its publisher lays it out, only small; ``$I2I_DATA_SOURCES``
points the registry at the local server. Each dataset is then fetched (downloaded, verified against
the sha256, size and image count of the miniature, unpacked, its layout checked) and read by the
package's own loader for it, which must give back the pixels that were written.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import minidata
from i2icourse import images as image_io, sr_eval
from i2icourse.data import DataError, fetch, get, image_files, load_photos
from i2icourse.data.autoencoding import _YALE_NAME, STL10Grey, yale_b
from i2icourse.data.fetch import MARKER, resolve
from i2icourse.data.paired import AlignedDataset, read_pairs
from i2icourse.data.sr import SRPatches
from i2icourse.data.unpaired import UnalignedDataset, read_unaligned

#: The largest mean error, in grey levels, that a quality-95 JPEG of these small images may leave.
JPEG = 6.0


@pytest.fixture
def mini(mini_sources, monkeypatch, tmp_path):
    """The miniatures as the registry's sources, a fresh cache, no mirror."""
    monkeypatch.setenv("I2I_DATA_SOURCES", str(mini_sources.path))
    monkeypatch.setenv("I2I_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("I2I_DATA_MIRROR", raising=False)
    return mini_sources


def error(x: torch.Tensor, truth: np.ndarray) -> float:
    """Mean absolute difference, in grey levels, between a loaded (C, H, W) image and the pixels written."""
    got = x.permute(1, 2, 0).numpy() * 255
    want = truth[..., None] if truth.ndim == 2 else truth
    assert got.shape[:2] == want.shape[:2]
    return float(np.abs(got - want).mean())


def uint8(x: torch.Tensor) -> np.ndarray:
    """A loaded (C, H, W) image back as the (H, W, C) bytes of its file."""
    return (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Every miniature goes through fetch as the real archive would
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(minidata.BUILDERS))
def test_each_miniature_is_downloaded_verified_and_unpacked_into_its_registry_folder(mini, name, tmp_path):
    archive, entry = mini.archives[name], get(name)
    requested = f"/{archive.path.name}"
    before = mini.server.requests.count(requested)
    folder = fetch(name, progress=False)
    assert mini.server.requests.count(requested) == before + 1          # from the local server, once
    assert folder == tmp_path / "cache" / entry.name / entry.subdir
    assert all((folder / p).exists() for p in entry.layout)
    marker = json.loads((tmp_path / "cache" / entry.name / MARKER).read_text())
    assert marker["sha256"] == archive.sha256                           # verified against the miniature
    assert fetch(name) == folder and mini.server.requests.count(requested) == before + 1  # instant the second time


def test_the_sources_file_changes_where_from_and_the_checks_and_nothing_else(mini, monkeypatch):
    archive = mini.archives["horse2zebra"]
    entry, real = resolve("Horse2Zebra"), get("horse2zebra")
    assert entry.urls == (mini.server.url_of(archive.path),)
    assert (entry.sha256, entry.size, entry.n_images) == (archive.sha256, archive.size, archive.n_images)
    assert entry.archive_name == real.archive_name
    same = {f.name for f in dataclasses.fields(real)} - {"urls", "sha256", "size", "n_images", "filename"}
    assert {k: getattr(entry, k) for k in same} == {k: getattr(real, k) for k in same}
    assert resolve(entry) is entry and resolve("waterloo") is get("waterloo")   # resolved, or not listed
    monkeypatch.delenv("I2I_DATA_SOURCES")
    assert resolve("horse2zebra") is real


# ----------------------------------------------------------------------------------------------
# The loaders on the layouts
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["facades", "maps"])
def test_pix2pix_files_read_as_the_photo_left_and_the_map_right(mini, name):
    root, archive = fetch(name, progress=False), mini.archives[name]
    for split in get(name).layout:
        truth = archive.under(f"{name}/{split}")
        files, pairs = image_io.list_images(root / split), read_pairs(root / split)
        assert [f.name for f in files] == sorted(truth) and len(pairs) == len(truth)
        for f, (a, b) in zip(files, pairs):
            ab = truth[f.name]
            h = ab.shape[0]
            assert a.shape == b.shape == (3, h, h)
            assert error(a, ab[:, :h]) < JPEG
            assert error(b, ab[:, h:]) < 2 * JPEG                       # JPEG blurs the colour of thin lines
            assert error(a, ab[:, h:]) > 5 * JPEG                       # the halves differ: a swap shows


def test_facades_train_as_chapter_4_reads_them(mini):
    root = fetch("facades", progress=False)
    train = AlignedDataset([(b, a) for a, b in read_pairs(root / "train")], 48, load_size=56)
    assert len(train) == minidata.FACADES_SPLITS["train"]
    assert {k: tuple(v.shape) for k, v in train[0].items()} == {"A": (3, 48, 48), "B": (3, 48, 48)}


def test_horse2zebra_reads_as_two_unpaired_domains_in_rgb(mini):
    root, archive = fetch("horse2zebra", progress=False), mini.archives["horse2zebra"]
    assert archive.content[f"horse2zebra/{minidata.HORSE2ZEBRA_GREY}"].ndim == 2   # one grey JPEG among them
    for phase in ("train", "test"):
        domains = read_unaligned(root, phase)
        for side, images in zip("AB", domains):
            truth = archive.under(f"horse2zebra/{phase}{side}")
            assert len(images) == len(truth)
            for x, name in zip(images, sorted(truth)):
                assert x.shape == (3, 64, 64)                           # grey files come as RGB too
                assert error(x, truth[name]) < JPEG
    test_set = UnalignedDataset(root, 48, load_size=48, train=False, phase="test")
    assert len(test_set) == len(minidata.HORSE2ZEBRA["testA"])
    item = test_set[1]
    assert item["A"].shape == item["B"].shape == (3, 48, 48)
    train_set = UnalignedDataset(root, 32)
    assert len(train_set) == len(minidata.HORSE2ZEBRA["trainA"]) and train_set[2]["B"].shape == (3, 32, 32)


@pytest.mark.parametrize("split", list(minidata.STL10_SIZES))
def test_stl10_grey_gives_back_the_images_written_column_major(mini, split):
    truth = mini.archives["STL10"].content[f"stl10_binary/{split}_X.bin"]   # (N, 3, 96, 96) as seen
    assert (truth[:, :, 0, :] != truth[:, :, :, 0]).any(axis=(1, 2)).all()   # a transposed read would differ
    images = STL10Grey(split)
    assert len(images) == minidata.STL10_SIZES[split]
    want = torch.stack([image_io.rgb_to_grey(torch.from_numpy(x).float() / 255) for x in truth])
    torch.testing.assert_close(images.stack(), want)


def test_yale_b_parses_people_and_lightings_and_reads_their_pixels(mini):
    probe = yale_b(size=16)
    lit = sorted((m, px) for m, px in mini.archives["yale_b_cropped"].content.items()
                 if _YALE_NAME.match(Path(m).name))                    # the Ambient images are left out
    assert len(probe) == len(minidata.YALE_PEOPLE) * len(minidata.YALE_LIGHTS) == len(lit)
    people = sorted(minidata.YALE_PEOPLE)
    got = sorted((people[i], a, e) for i, a, e in zip(probe.targets["identity"].tolist(),
                                                      probe.targets["azimuth"].tolist(),
                                                      probe.targets["elevation"].tolist()))
    assert got == sorted((p, a, e) for p in people for a, e in minidata.YALE_LIGHTS)
    want = torch.stack([image_io.resize(torch.from_numpy(px).float()[None] / 255, size=(16, 16)) for _, px in lit])
    torch.testing.assert_close(probe.images, want)


@pytest.mark.parametrize("name,sizes", [("Set5", minidata.SET5), ("Set14", minidata.SET14)])
def test_sr_benchmarks_load_with_their_names_sizes_and_pixels(mini, name, sizes):
    assert [f.stem for f in image_files(name)] == sorted(sizes)
    truth = mini.archives[name].under(f"{name}_HR")
    photos = sr_eval.load_set(name)
    assert list(photos) == sorted(sizes)
    for stem, x in photos.items():
        assert x.shape == (3, *sizes[stem])
        px = truth[f"{stem}.png"]
        assert np.array_equal(uint8(x), np.broadcast_to(px[..., None], x.shape[1:] + (3,)) if px.ndim == 2 else px)


def test_bsds500_splits_hold_their_photos_and_train_srcnn(mini):
    archive = mini.archives["BSDS500"]
    for split, ids in minidata.BSDS500.items():
        assert [f.stem for f in image_files("BSDS500", split)] == sorted(ids)   # Thumbs.db is no image
        truth = archive.under(f"BSR/BSDS500/data/images/{split}")
        for stem, x in load_photos(f"BSDS500/{split}").items():
            assert x.shape == (3, *ids[stem]) and error(x, truth[f"{stem}.jpg"]) < JPEG
    everything = [f.stem for split in ("train", "val", "test") for f in image_files("BSDS500", split)]
    assert [f.stem for f in image_files("BSDS500")] == everything       # no split: all of them, in order
    assert list(load_photos("BSDS500")) == everything
    patches = SRPatches(["BSDS500/train", "BSDS500/val"], scale=3, patch=15, patches=8)
    assert len(patches.names) == len(minidata.BSDS500["train"]) + len(minidata.BSDS500["val"])
    assert patches[0]["A"].shape == patches[0]["B"].shape == (1, 15, 15)


def test_cbsd68_loads_the_clean_photos_only(mini):
    folder = get("CBSD68").subdir
    truth = mini.archives["CBSD68"].under(folder)
    photos = load_photos("CBSD68")
    assert list(photos) == [Path(n).stem for n in sorted(truth)]       # not the noisy<sigma>/ copies
    for stem, x in photos.items():
        assert np.array_equal(uint8(x), truth[f"{stem}.png"])


def test_dped_phone_patches_match_the_canon_ones_by_name(mini):
    for phone in minidata.DPED_PHONES:
        for part in ("training_data", "test_data/patches"):
            shot = image_files("DPED", f"{phone}/{part}/{phone}")
            canon = image_files("DPED", f"{phone}/{part}/canon")
            assert [f.name for f in shot] == [f.name for f in canon]
            assert all(image_io.load_image(f).shape == (3, 100, 100) for f in shot + canon)


# ----------------------------------------------------------------------------------------------
# What goes wrong says so
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("table,message", [
    ({"facade": {"urls": ["http://127.0.0.1:9/facades.tar.gz"]}}, r"no dataset named 'facade'\. Did you mean 'facades'"),
    ({"facades": {"urls": ["http://127.0.0.1:9/facades.tar.gz"], "md5": "0"}}, r"'facades': unknown field\(s\) md5"),
    ({"facades": {"sha256": "0" * 64}}, r"'facades': 'urls' must be a non-empty list"),
    ({"facades": {"urls": ["ftp://example.org/facades.tar.gz"]}}, r"not an http\(s\) URL"),
], ids=["unknown dataset", "unknown field", "no urls", "not http"])
def test_a_wrong_sources_file_is_a_clear_error(mini, tmp_path, monkeypatch, table, message):
    path = tmp_path / "sources.json"
    path.write_text(json.dumps(table))
    monkeypatch.setenv("I2I_DATA_SOURCES", str(path))
    with pytest.raises(DataError, match=rf"I2I_DATA_SOURCES={path}.*{message}"):
        fetch("Set5", progress=False)


def test_the_image_count_of_the_sources_file_is_checked(mini, tmp_path, monkeypatch):
    table = json.loads(mini.path.read_text())
    table["facades"]["n_images"] += 1
    (tmp_path / "sources.json").write_text(json.dumps(table))
    monkeypatch.setenv("I2I_DATA_SOURCES", str(tmp_path / "sources.json"))
    with pytest.raises(DataError, match=rf"holds {mini.archives['facades'].n_images} image files of 'facades', "
                                        rf"expected {table['facades']['n_images']}"):
        fetch("facades", progress=False)
    assert not (tmp_path / "cache" / "facades").exists()


def test_a_misnamed_folder_fails_the_layout_check_which_names_it(mini, tmp_path, monkeypatch):
    (tmp_path / "bad").mkdir()
    bad = minidata.build_facades(tmp_path / "bad", splits={"training": 3, "val": 2, "test": 2})
    with minidata.MiniServer(tmp_path / "bad") as server:
        monkeypatch.setenv("I2I_DATA_SOURCES", str(minidata.write_sources(tmp_path / "bad.json", server, [bad])))
        with pytest.raises(DataError, match=r"does not hold 'facades': it lacks train \(its top level: facades\)"):
            fetch("facades", progress=False)
    assert not (tmp_path / "cache" / "facades").exists()


def test_a_mirror_still_comes_first_and_its_archive_is_checked_against_the_sources_file(mini, tmp_path, monkeypatch):
    archive = mini.archives["horse2zebra"]                 # the registry's sha256 is the real archive's
    (tmp_path / "mirror").mkdir()
    shutil.copy(archive.path, tmp_path / "mirror")
    monkeypatch.setenv("I2I_DATA_MIRROR", str(tmp_path / "mirror"))
    before = len(mini.server.requests)
    assert fetch("horse2zebra", progress=False) == tmp_path / "cache" / "horse2zebra" / "horse2zebra"
    assert len(mini.server.requests) == before             # nothing downloaded
