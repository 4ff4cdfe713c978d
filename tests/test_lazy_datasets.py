"""Folder datasets read their files lazily: listed at construction, decoded one item at a time."""
import pickle

import pytest
import torch

from i2icourse import images as image_io, train
from i2icourse.data.paired import AlignedDataset, LazyImages, read_pairs, write_pairs
from i2icourse.data.unpaired import UnalignedDataset, read_unaligned


def photos(n, h=20, w=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, h, w, generator=g) for _ in range(n)]


@pytest.fixture
def pair_folder(tmp_path, request):
    """Four pairs written in the layout of the test's ``layout`` parameter."""
    pairs = list(zip(photos(4, seed=1), photos(4, seed=2)))
    return write_pairs(pairs, tmp_path / request.param, request.param)


@pytest.fixture
def cyclegan_folder(tmp_path):
    """CycleGAN's layout: 3 train A, 5 train B, 2 test A, 2 test B images of different sizes."""
    for split, n, h in (("trainA", 3, 20), ("trainB", 5, 24), ("testA", 2, 20), ("testB", 2, 22)):
        for i, x in enumerate(photos(n, h, seed=h + n)):
            image_io.save_image(x, tmp_path / split / f"{split}_{i}.png")
    return tmp_path


@pytest.fixture
def decodes(monkeypatch):
    """The files decoded through ``i2icourse.images.load_image`` since the fixture started, in order."""
    seen, load = [], image_io.load_image

    def counting(path, mode="rgb"):
        seen.append(path)
        return load(path, mode)

    monkeypatch.setattr(image_io, "load_image", counting)
    return seen


LAYOUTS = pytest.mark.parametrize("pair_folder", ["side_by_side", "folders"], indirect=True)


@LAYOUTS
def test_a_pair_folder_is_listed_at_construction_and_decoded_per_item(pair_folder, decodes):
    ds = AlignedDataset(pair_folder, 16, repeat=2)
    assert len(ds) == 8 and decodes == []
    ds[5]
    files_per_pair = 1 if pair_folder.name == "side_by_side" else 2
    assert len(decodes) == files_per_pair
    ds[5]
    assert len(decodes) == 2 * files_per_pair                  # nothing is cached: memory holds the list only


def test_a_cyclegan_folder_is_listed_at_construction_and_decoded_per_item(cyclegan_folder, decodes):
    ds = UnalignedDataset(cyclegan_folder, 16)
    assert (len(ds.A), len(ds.B)) == (3, 5) and decodes == []
    ds[4]
    assert [p.parent.name for p in decodes] == ["trainA", "trainB"]


@LAYOUTS
@pytest.mark.parametrize("train_mode", [True, False])
def test_lazy_pairs_are_bit_identical_to_the_eager_ones(pair_folder, train_mode):
    lazy = AlignedDataset(pair_folder, 12, load_size=18, train=train_mode, repeat=2, mode_a="grey")
    eager = AlignedDataset(read_pairs(pair_folder, mode_a="grey"), 12, load_size=18, train=train_mode, repeat=2)
    assert len(lazy) == len(eager)
    for i in range(len(lazy)):
        torch.manual_seed(i)
        got = lazy[i]
        torch.manual_seed(i)
        want = eager[i]
        assert got["A"].shape == (1, 12, 12) and got["B"].shape == (3, 12, 12)
        assert torch.equal(got["A"], want["A"]) and torch.equal(got["B"], want["B"])


@pytest.mark.parametrize("train_mode", [True, False])
def test_lazy_unaligned_items_are_bit_identical_to_the_eager_ones(cyclegan_folder, train_mode):
    phase = "train" if train_mode else "test"
    lazy = UnalignedDataset(cyclegan_folder, 16, load_size=18, train=train_mode, seed=3, phase=phase)
    eager = UnalignedDataset(read_unaligned(cyclegan_folder, phase), 16, load_size=18, train=train_mode, seed=3)
    assert len(lazy) == len(eager)
    for i in range(len(lazy)):
        torch.manual_seed(i)
        got = lazy[i]
        torch.manual_seed(i)
        want = eager[i]
        assert torch.equal(got["A"], want["A"]) and torch.equal(got["B"], want["B"])


def test_the_test_domains_iterate_as_decoded_images_as_chapter_6_reads_them(cyclegan_folder):
    test_set = UnalignedDataset(cyclegan_folder, 16, load_size=16, train=False, phase="test")
    test_a, test_b = read_unaligned(cyclegan_folder, "test")
    for lazy, eager in ((test_set.A, test_a), (test_set.B, test_b)):
        shown = torch.stack([test_set.transform(x) for x in lazy])
        assert torch.equal(shown, torch.stack([test_set.transform(x) for x in eager]))


@LAYOUTS
def test_folder_datasets_load_in_dataloader_workers(pair_folder, cyclegan_folder):
    lazy = AlignedDataset(pair_folder, 12, train=False)
    assert pickle.loads(pickle.dumps(lazy)).pairs[1][1].shape == (3, 20, 28)   # paths travel, not images
    got = next(train.batches(lazy, 4, shuffle=False, num_workers=2))
    want = next(train.batches(AlignedDataset(read_pairs(pair_folder), 12, train=False), 4, shuffle=False))
    assert torch.equal(got["A"], want["A"]) and torch.equal(got["B"], want["B"])

    unpaired = UnalignedDataset(cyclegan_folder, 16, train=False)
    got = next(train.batches(unpaired, 5, shuffle=False, num_workers=2))
    want = next(train.batches(UnalignedDataset(read_unaligned(cyclegan_folder), 16, train=False), 5, shuffle=False))
    assert torch.equal(got["A"], want["A"]) and torch.equal(got["B"], want["B"])


@pytest.mark.parametrize("pair_folder", ["side_by_side"], indirect=True)
def test_an_unreadable_file_is_named_when_its_item_is_read(pair_folder, cyclegan_folder):
    (pair_folder / "0002.png").write_bytes(b"not an image")
    ds = AlignedDataset(pair_folder, 12)                        # listing does not open the files
    assert ds[1]["A"].shape == (3, 12, 12)
    with pytest.raises(image_io.ImageError, match="0002.png"):
        ds[2]

    (cyclegan_folder / "trainB" / "trainB_4.png").write_bytes(b"\x89PNG broken")
    unpaired = UnalignedDataset(cyclegan_folder, 16, train=False)
    with pytest.raises(image_io.ImageError, match="trainB_4.png"):
        unpaired[4]


@pytest.mark.parametrize("pair_folder", ["folders"], indirect=True)
def test_a_b_folders_with_different_names_fail_at_construction(pair_folder, decodes):
    (pair_folder / "B" / "0003.png").rename(pair_folder / "B" / "0003_target.png")
    with pytest.raises(ValueError, match="different file names.*0003"):
        AlignedDataset(pair_folder, 12)
    assert decodes == []


@pytest.mark.parametrize("pair_folder", ["folders"], indirect=True)
def test_a_b_files_of_different_sizes_are_named_when_read(pair_folder):
    image_io.save_image(torch.rand(3, 10, 10), pair_folder / "B" / "0001.png")
    ds = AlignedDataset(pair_folder, 8)
    assert ds[0]["A"].shape == (3, 8, 8)
    with pytest.raises(ValueError, match=r"0001.png.*not aligned"):
        ds[1]


def test_lazy_images_read_the_same_image_as_load_image(cyclegan_folder):
    files = image_io.list_images(cyclegan_folder / "testB")
    images = LazyImages(files, "grey")
    assert len(images) == 2 and "2 files" in repr(images)
    assert torch.equal(images[-1], image_io.load_image(files[-1], "grey"))
    assert torch.equal(pickle.loads(pickle.dumps(images))[0], image_io.load_image(files[0], "grey"))
