"""The datasets the course uses: where each one comes from, on what terms, and what the user gets.

One :class:`Dataset` entry per name: the archive's address(es), the licence, the citation key, the
layout after unpacking, and what lets :func:`~i2icourse.data.fetch.fetch` verify what it installs:
the archive's size and sha256 where a source for them exists, otherwise the number of image files
of the unpacked dataset (``n_images``) where it is known for certain. A download that neither can
check is verified only by the archive's own checks (gzip's, zip's and RAR's CRCs and lengths), which
catch a download cut short but not a different version.
Datasets that need a login or a form (Cityscapes, the TU Graz drone set) carry a ``manual`` note
instead of a URL, and ``fetch`` explains it rather than trying.

Nothing here touches the network or the disk: this module is the table, ``fetch`` does the work.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Mapping

_SHA256 = re.compile(r"[0-9a-f]{64}")


class UnknownDatasetError(LookupError):
    """A dataset name that is not in the registry (the message lists the names that are)."""


@dataclass(frozen=True)
class Dataset:
    """One registered dataset. Paths in ``layout`` and ``splits`` are relative to the folder ``fetch`` returns."""

    name: str                          #: the name given to fetch() (matched ignoring case, '-' and '_')
    title: str                         #: one line: what it is
    licence: str                       #: the terms, short (``notes`` says more where needed)
    citation: str                      #: BibTeX key in the book's bibliography
    homepage: str                      #: the publisher's page, where the terms are stated in full
    layout: tuple[str, ...]            #: what the user gets: folders/files that must exist ('.' = the folder itself)
    urls: tuple[str, ...] = ()         #: the same archive at each address, tried in order
    filename: str | None = None        #: the archive's file name (default: the last part of the first URL)
    sha256: str | None = None          #: of the archive, only where a source for it exists
    size: int | None = None            #: of the archive in bytes, likewise
    subdir: str = ""                   #: the folder inside the archive that fetch returns
    n_images: int | None = None        #: image files in the returned folder and below, checked after unpacking
    splits: Mapping[str, str] = field(default_factory=dict)  #: split name -> folder, for image_files()
    mirror_paths: tuple[str, ...] = ()  #: where a data mirror may hold it unpacked (besides <mirror>/<name>)
    aliases: tuple[str, ...] = ()      #: other names fetch() accepts
    manual: str | None = None          #: set when it cannot be downloaded automatically: how to get it
    notes: str = ""                    #: format, conventions, caveats

    def __post_init__(self) -> None:
        if not self.urls and not self.manual:
            raise ValueError(f"dataset {self.name!r}: give urls or a manual-download note")
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"dataset {self.name!r}: not an http(s) URL: {url}")
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"dataset {self.name!r}: sha256 must be 64 lower-case hex digits")
        if self.n_images is not None and self.n_images < 1:
            raise ValueError(f"dataset {self.name!r}: n_images must be positive")
        if not self.layout:
            raise ValueError(f"dataset {self.name!r}: the layout must name at least one path ('.' for the folder)")

    @property
    def archive_name(self) -> str | None:
        """The archive's file name in the download folder and in a mirror (None for manual datasets)."""
        if self.filename:
            return self.filename
        return self.urls[0].rstrip("/").rsplit("/", 1)[-1] if self.urls else None

    @property
    def mirror_candidates(self) -> tuple[str, ...]:
        """Folders, relative to a data mirror, that may hold this dataset unpacked, in the order tried."""
        return tuple(dict.fromkeys((*self.mirror_paths, self.name)))


_BSD_TERMS = "non-commercial research and education (Berkeley BSDS terms)"
_IMAGENET_TERMS = "images from ImageNet: non-commercial research and education only"

DATASETS: tuple[Dataset, ...] = (
    # ---- super-resolution benchmarks -----------------------------------------------------------
    Dataset(
        name="Set5", title="Set5: 5 colour photos, the standard super-resolution test set",
        licence="research benchmark; no licence stated by the authors",
        citation="bevilacqua2012lowcomplexity",
        homepage="http://people.rennes.inria.fr/Aline.Roumy/results/SR_BMVC12.html",
        urls=("https://huggingface.co/datasets/eugenesiow/Set5/resolve/main/data/Set5_HR.tar.gz",),
        # No published checksum for this copy.
        subdir="Set5_HR", layout=(".",), n_images=5, mirror_paths=("sr_benchmarks/Set5",),
        notes="High-resolution images only: the course makes the low-resolution inputs itself (io.resize)."),
    Dataset(
        name="Set14", title="Set14: 14 photos, super-resolution test set",
        licence="research benchmark; no licence stated by the authors",
        citation="zeyde2010single",
        homepage="https://huggingface.co/datasets/eugenesiow/Set14",
        urls=("https://huggingface.co/datasets/eugenesiow/Set14/resolve/main/data/Set14_HR.tar.gz",),
        # No published checksum for this copy.
        subdir="Set14_HR", layout=(".",), n_images=14, mirror_paths=("sr_benchmarks/Set14",),
        notes="bridge.png is grey in the original too."),
    # ---- natural photos ------------------------------------------------------------------------
    Dataset(
        name="BSDS500", title="Berkeley Segmentation Dataset 500: natural photos with human segmentations",
        licence=_BSD_TERMS, citation="arbelaez2011contour",
        homepage="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/resources.html",
        urls=("https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz",
              "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz"),
        # No sha256 published by Berkeley; its 500 JPEGs (200 train, 100 val, 200 test) are counted instead.
        subdir="BSR/BSDS500/data", n_images=500,
        layout=("images/train", "images/val", "images/test", "groundTruth/train"),
        splits={"train": "images/train", "val": "images/val", "test": "images/test"},
        aliases=("BSD", "BSD500", "BSDS"),
        notes="481x321 / 321x481 JPEGs: 200 train, 100 val (= BSD100), 200 test; ground truth as .mat."),
    Dataset(
        name="CBSD68", title="Colour BSD68: 68 BSDS test photos, the standard denoising benchmark",
        licence=_BSD_TERMS, citation="martin2001database",
        homepage="https://github.com/clausmichele/CBSD68-dataset",
        # Pinned to a commit; GitHub builds archive zips on the fly, so no checksum is recorded.
        urls=("https://github.com/clausmichele/CBSD68-dataset/archive/51a07a95884ac7c8bdd5d1614f9da781adc3c4a0.zip",),
        filename="CBSD68-dataset.zip",
        subdir="CBSD68-dataset-51a07a95884ac7c8bdd5d1614f9da781adc3c4a0/CBSD68/original_png",
        layout=(".",), n_images=68, aliases=("BSD68",), mirror_paths=("CBSD68",),
        notes="Lossless PNGs of the original JPEGs; file names differ between copies (BSD ids or 0000..0067)."),
    Dataset(
        name="waterloo", title="Waterloo Exploration Database: 4,744 pristine natural photos",
        licence="research use; terms on the project page", citation="ma2017waterloo",
        homepage="https://ece.uwaterloo.ca/~k29ma/exploration/",
        urls=("https://ivc.uwaterloo.ca/database/WaterlooExploration/exploration_database_and_code.rar",
              "http://ivc.uwaterloo.ca/database/WaterlooExploration/exploration_database_and_code.rar"),
        # No published checksum. No file count either: 4,744 photos are in pristine_images/, but what else
        # the archive holds is not known for certain; unrar's own checks catch a download cut short.
        subdir="exploration_database_and_code", layout=("pristine_images",),
        splits={"pristine": "pristine_images"},
        aliases=("WED", "waterloo_exploration"),
        notes="A RAR archive: unpacking it needs unrar, 7z or bsdtar on the PATH (Python cannot read RAR)."),
    Dataset(
        name="STL10", title="STL-10: 96x96 colour photos in 10 classes, plus 100,000 unlabelled",
        licence=_IMAGENET_TERMS, citation="coates2011analysis",
        homepage="https://cs.stanford.edu/~acoates/stl10/",
        urls=("http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",),
        # Size and sha256 from TensorFlow Datasets (tensorflow_datasets/datasets/stl10/checksums.tsv).
        sha256="f31fd99273a1acb8609c8db427cebb1de3f71de77758cdc0e22956e1289b9866", size=2640397119,
        subdir="stl10_binary",
        layout=("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin"),
        aliases=("STL-10",),
        notes="Binary arrays, not image files: uint8 (N, 3, 96, 96) stored column-major; "
              "torchvision.datasets.STL10 reads this folder."),
    # ---- pix2pix (paired) ----------------------------------------------------------------------
    Dataset(
        name="facades", title="CMP Facades as pix2pix pairs: 400 photo|label-map images",
        licence="research use; cite the CMP Facade Database", citation="tylecek2013spatial",
        homepage="https://cmp.felk.cvut.cz/~tylecr1/facade/",
        urls=("http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz",),
        # No published checksum; its 606 JPEGs (400 train, 100 val, 106 test) are counted instead.
        subdir="facades", layout=("train", "val", "test"), n_images=606,
        notes="Each JPEG is 512x256: the photo (A) on the left, the label map (B) on the right; "
              "pix2pix trains B->A. 400 train, 100 val, 106 test."),
    Dataset(
        name="maps", title="Google Maps aerial photo|map pairs, as prepared for pix2pix",
        licence="scraped from Google Maps by the pix2pix authors: research use only (Google terms)",
        citation="isola2017image",
        homepage="https://phillipi.github.io/pix2pix/",
        urls=("http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/maps.tar.gz",),
        # No published checksum; its 2,194 JPEGs (1,096 train, 1,098 val) are counted instead.
        subdir="maps", layout=("train", "val"), n_images=2194,
        notes="Each JPEG is 1200x600: the aerial photo (A) on the left, the map (B) on the right."),
    Dataset(
        name="cityscapes", title="Cityscapes: street scenes with fine semantic labels (labels->photo in pix2pix)",
        licence="Cityscapes licence: non-commercial research and teaching, no redistribution, login required",
        citation="cordts2016cityscapes",
        homepage="https://www.cityscapes-dataset.com/",
        manual="Cityscapes needs a free account and acceptance of its licence, so it cannot be downloaded "
               "for you. Register and log in at https://www.cityscapes-dataset.com/, download "
               "gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip from "
               "https://www.cityscapes-dataset.com/downloads/ and unzip both into one folder.",
        layout=("gtFine", "leftImg8bit"),
        notes="pix2pix's labels|photo pairs are made from these two folders by "
              "datasets/prepare_cityscapes_dataset.py of the pytorch-CycleGAN-and-pix2pix repository."),
    # ---- CycleGAN (unpaired) -------------------------------------------------------------------
    Dataset(
        name="horse2zebra", title="horse2zebra: horse and zebra photos from ImageNet, unpaired (CycleGAN)",
        licence=_IMAGENET_TERMS, citation="zhu2017unpaired",
        homepage="https://junyanz.github.io/CycleGAN/",
        urls=("http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip",
              "https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/horse2zebra.zip"),
        # Size and sha256 from TensorFlow Datasets (tensorflow_datasets/url_checksums/cycle_gan.txt),
        # recorded for the archive at its former address (the second URL); the file moved unchanged.
        sha256="a74d9d392eecca9966b51287a76ca126af473d9de4f3e8fc0e9cda08fa1730a1", size=116867962,
        subdir="horse2zebra", layout=("trainA", "trainB", "testA", "testB"),
        notes="256x256 JPEGs; A = horses, B = zebras."),
    # ---- other image-to-image tasks ------------------------------------------------------------
    Dataset(
        name="semantic_drone", title="TU Graz Semantic Drone Dataset: 400 aerial photos, 6000x4000, 22 classes",
        licence="non-commercial use only, no redistribution (TU Graz licence)",
        citation="icg2019semanticdrone",
        homepage="http://dronedataset.icg.tugraz.at",
        manual="The TU Graz Semantic Drone Dataset is handed out from its own page after you accept its "
               "licence (non-commercial use, no redistribution). Download the training set from "
               "http://dronedataset.icg.tugraz.at and unpack it.",
        layout=("training_set/images", "training_set/gt/semantic/label_images"),
        aliases=("drone", "tugraz_drone", "semantic_drone_dataset"),
        notes="Copies elsewhere (e.g. Kaggle) use other folder names: move them into this layout."),
    Dataset(
        name="DPED", title="DPED: aligned phone/DSLR 100x100 patches (iPhone, BlackBerry, Sony vs Canon)",
        licence="research use; terms on the project page", citation="ignatov2017dslr",
        homepage="http://people.ee.ethz.ch/~ihnatova/",
        urls=("https://download.ai-benchmark.com/s/dWZz5RD9kHpedix/download/dped.gz",),
        # No published checksum and no file count known for certain; gzip's own length and CRC catch a
        # download cut short. The file is a gzipped tar despite its name.
        subdir="dped", layout=("iphone", "blackberry", "sony"),
        notes="<phone>/training_data/{<phone>,canon}/ and <phone>/test_data/patches/ hold matching patches."),
    Dataset(
        name="yale_b_cropped", title="Extended Yale Face Database B, cropped: 38 people under 64 lightings",
        licence="free for research; acknowledge the Yale Face Database B", citation="lee2005acquiring",
        homepage="http://vision.ucsd.edu/~leekc/ExtYaleDatabase/ExtYaleB.html",
        urls=("http://vision.ucsd.edu/extyaleb/CroppedYaleBZip/CroppedYale.zip",),
        # No published checksum and no file count known for certain; the zip's own directory and CRCs
        # catch a download cut short.
        subdir="CroppedYale", layout=("yaleB01", "yaleB39"),
        aliases=("yaleb", "extended_yale_b", "CroppedYale"),
        notes="168x192 grey PGMs, one folder per person (yaleB01..yaleB39, no yaleB14); also cite "
              "georghiades2001few."),
)

REGISTRY: dict[str, Dataset] = {d.name: d for d in DATASETS}


def _key(name: str) -> str:
    return re.sub(r"[-_\s]", "", name).lower()


def _index(registry: Mapping[str, Dataset]) -> dict[str, Dataset]:
    index: dict[str, Dataset] = {}
    for entry in registry.values():
        for label in (entry.name, *entry.aliases):
            other = index.setdefault(_key(label), entry)
            if other is not entry:
                raise ValueError(f"dataset name {label!r} is used by both {other.name!r} and {entry.name!r}")
    return index


_index(REGISTRY)  # fail at import if two entries share a name or alias


def names() -> list[str]:
    """The registered dataset names, in registry order."""
    return list(REGISTRY)


def get(name: str) -> Dataset:
    """The entry called ``name`` or one of its aliases (ignoring case, '-', '_' and spaces)."""
    index = _index(REGISTRY)
    entry = index.get(_key(name))
    if entry is None:
        close = difflib.get_close_matches(_key(name), list(index), n=1)
        hint = f" Did you mean {index[close[0]].name!r}?" if close else ""
        raise UnknownDatasetError(f"no dataset named {name!r}.{hint} Registered: {', '.join(REGISTRY)}")
    return entry


def human_size(n: int | None) -> str:
    """A byte count for people: '111.5 MiB'; '?' when unknown."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _verified_by(d: Dataset) -> str:
    """What fetch checks the dataset against: 'sha256', 'size', 'N images', or '-' (only the archive's own checks)."""
    if d.sha256:
        return "sha256"
    if d.size is not None:
        return "size"
    return f"{d.n_images} images" if d.n_images is not None else "-"


def catalogue() -> str:
    """The registry as a text table: name, archive size, what a download is verified by, source, licence."""
    rows = [("name", "size", "verified by", "source", "licence")]
    for d in DATASETS:
        source = "manual" if d.manual else "download (RAR)" if (d.archive_name or "").endswith(".rar") else "download"
        rows.append((d.name, human_size(d.size), _verified_by(d), source, d.licence))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {e:<{widths[3]}}  {f}" for a, b, c, e, f in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)
