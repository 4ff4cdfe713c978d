"""Miniature copies of the course's datasets, in each one's published layout, and a local server for them.

Each ``build_<dataset>(folder)`` writes into ``folder`` the archive the registry downloads, under the
same file name, in the same format (tar.gz or zip, JPEG, PNG, PGM, STL-10's binary arrays, BSDS's
.mat), with the same folder names and file names, only with a few small images: crops of
scikit-image's bundled photos, a different crop for every file. :class:`MiniServer` serves a folder
on 127.0.0.1, and :func:`write_sources` writes the ``$I2I_DATA_SOURCES`` file that points the
registry at it (see :mod:`i2icourse.data.fetch`), so that ``fetch`` and the loaders run on them
exactly as on the real downloads::

    with minidata.serve(tmp_path) as mini:          # builds every archive, serves them, writes the file
        os.environ["I2I_DATA_SOURCES"] = str(mini.path)
        data.fetch("facades")                       # downloaded from mini.url, verified, unpacked

Not covered: waterloo (a RAR archive: nothing here can write RAR). LFW needs no download at all: the
probe set is scikit-image's bundled ``lfw_subset``.
"""
from __future__ import annotations

import functools
import io as bytes_io
import json
import tarfile
import threading
import urllib.parse
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np
from PIL import Image

from i2icourse.data import get, sha256sum
from i2icourse.images import IMAGE_SUFFIXES


# ----------------------------------------------------------------------------------------------
# Pixels: a different small crop of a real photo for every file
# ----------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    """scikit-image's bundled natural photos as (H, W, 3) uint8 arrays (loaded once)."""
    from i2icourse.data.photos import SKIMAGE_TRAIN, skimage_photos

    return tuple((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                 for x in skimage_photos(SKIMAGE_TRAIN, mode="rgb").values())


def _frac(x: float) -> float:
    return x - np.floor(x)


def photo(index: int, height: int, width: int, grey: bool = False) -> np.ndarray:
    """Crop number ``index`` of the bundled photos, resized to ``height`` x ``width``: (H, W, 3) uint8, (H, W) if ``grey``.

    Successive indices walk through the photos, then through other windows of each, so no two are alike.
    """
    photos = _photos()
    src = photos[index % len(photos)]
    turn = index // len(photos)
    H, W = src.shape[:2]
    ch = int(H * (0.35 + 0.4 * _frac(0.618 * turn + 0.1 * index)))
    cw = min(W, round(ch * width / height))
    ch = min(ch, round(cw * height / width))
    top = int((H - ch) * _frac(0.382 * turn + 0.27 * index))
    left = int((W - cw) * _frac(0.707 * turn + 0.53 * index))
    crop = Image.fromarray(src[top:top + ch, left:left + cw]).resize((width, height), Image.Resampling.LANCZOS)
    return np.array(crop.convert("L") if grey else crop)


class _Counter:
    """Hands out photo indices, so that every file of an archive gets its own crop."""

    def __init__(self, start: int) -> None:
        self.next = start

    def photo(self, height: int, width: int, grey: bool = False) -> np.ndarray:
        self.next += 1
        return photo(self.next - 1, height, width, grey)


#: The colours of the CMP facade label maps (MATLAB's jet(12), one per class: background, facade, window, ...).
CMP_COLOURS = ((0, 0, 170), (0, 0, 255), (0, 85, 255), (0, 170, 255), (0, 255, 255), (85, 255, 170),
               (170, 255, 85), (255, 255, 0), (255, 170, 0), (255, 85, 0), (255, 0, 0), (170, 0, 0))


def facade_labels(size: int, seed: int) -> np.ndarray:
    """A CMP-style label map (size, size, 3): a facade with a grid of windows, sills, a cornice and a door."""
    rng = np.random.default_rng(seed)
    c = [np.array(x, np.uint8) for x in CMP_COLOURS]
    out = np.empty((size, size, 3), np.uint8)
    out[:] = c[0]                                          # background (sky)
    roof = int(rng.integers(1, size // 8 + 2))
    out[roof:] = c[1]                                      # facade
    out[roof:roof + max(1, size // 16)] = c[4]             # cornice
    rows, cols = int(rng.integers(2, 4)), int(rng.integers(2, 5))
    cell_h, cell_w = (size - roof) // (rows + 1), size // cols
    for r in range(rows):
        for k in range(cols):
            y, x = roof + cell_h // 2 + r * cell_h, k * cell_w + cell_w // 4
            out[y:y + cell_h // 2, x:x + cell_w // 2] = c[2]                        # window
            out[y + cell_h // 2:y + cell_h // 2 + max(1, size // 32), x:x + cell_w // 2] = c[5]  # sill
    door = int(rng.integers(size // 4, size // 2))
    out[size - size // 5:, door:door + size // 8] = c[3]  # door
    return out


def map_tiles(size: int, seed: int) -> np.ndarray:
    """A Google-Maps-like map (size, size, 3): flat-colour blocks, parks and water between white roads."""
    rng = np.random.default_rng(seed)
    colours = [(235, 232, 226), (200, 225, 180), (170, 210, 240), (242, 239, 233)]
    out = np.empty((size, size, 3), np.uint8)
    out[:] = colours[0]
    for _ in range(6):
        y, x = rng.integers(0, size, 2)
        h, w = rng.integers(size // 8, size // 3, 2)
        out[y:y + h, x:x + w] = colours[int(rng.integers(1, len(colours)))]
    for k in rng.integers(0, size, 3):
        out[k:k + 2] = 255                                 # a road across
        out[:, k:k + 2] = 255                              # and one down
    return out


# ----------------------------------------------------------------------------------------------
# Files and archives
# ----------------------------------------------------------------------------------------------

def encode(pixels: np.ndarray, fmt: str) -> bytes:
    """An image file's bytes: ``fmt`` is 'JPEG' (quality 95), 'PNG' or 'PPM' (a binary PGM for grey pixels)."""
    buf = bytes_io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _folders(names: Iterable[str]) -> list[str]:
    """Every folder above the given member names, parents first, as archives list them."""
    found = {str(p) for name in names for p in PurePosixPath(name).parents if str(p) != "."}
    return sorted(found, key=lambda p: (p.count("/"), p))


def write_tar(path: Path, files: Mapping[str, bytes]) -> Path:
    """A gzipped tar at ``path`` holding ``files`` (member name -> bytes) and their folders."""
    with tarfile.open(path, "w:gz") as tar:
        for folder in _folders(files):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, bytes_io.BytesIO(data))
    return path


def write_zip(path: Path, files: Mapping[str, bytes]) -> Path:
    """A zip at ``path`` holding ``files`` (member name -> bytes) and their folders (deflated)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for folder in _folders(files):
            zf.writestr(folder + "/", b"")
        for name, data in files.items():
            zf.writestr(name, data)
    return path


@dataclass
class Archive:
    """One miniature archive: the registry name it stands in for, its file, and what its members hold.

    ``content`` maps a member's name to the pixels written into it, before any compression: an
    (H, W, 3) or (H, W) uint8 image, or for STL-10's ``*_X.bin`` the (N, 3, 96, 96) images, row-major.
    """

    name: str
    path: Path
    content: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return sha256sum(self.path)

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @property
    def n_images(self) -> int | None:
        """Image files in the registry's folder of the dataset, as fetch counts them (None when there are none)."""
        subdir = get(self.name).subdir
        inside = [n for n in self.content if not subdir or n.startswith(subdir.rstrip("/") + "/")]
        n = sum(1 for m in inside if PurePosixPath(m).suffix.lower() in IMAGE_SUFFIXES)
        return n or None

    def under(self, folder: str) -> dict[str, np.ndarray]:
        """The images written directly in ``folder`` (a member path), by file name."""
        return {PurePosixPath(m).name: px for m, px in self.content.items() if str(PurePosixPath(m).parent) == folder}


def _archive(name: str, path: Path, images: Mapping[str, tuple[np.ndarray, str]],
             extra: Mapping[str, bytes] | None = None) -> Archive:
    """Write ``images`` (member -> (pixels, format)) and ``extra`` files into ``path`` (tar.gz or zip by its name)."""
    files = {m: encode(px, fmt) for m, (px, fmt) in images.items()} | dict(extra or {})
    (write_zip if path.suffix == ".zip" else write_tar)(path, dict(sorted(files.items())))
    return Archive(name, path, {m: px for m, (px, _) in images.items()})


# ----------------------------------------------------------------------------------------------
# The datasets
# ----------------------------------------------------------------------------------------------

FACADES_SPLITS = {"train": 3, "val": 2, "test": 2}
MAPS_SPLITS = {"train": 2, "val": 2}


def _side_by_side(folder: Path, name: str, archive: str, splits: Mapping[str, int], size: int,
                  labels: Callable[[int, int], np.ndarray], start: int) -> Archive:
    """pix2pix's A|B JPEGs ``<name>/<split>/<n>.jpg`` (n from 1): the photo left, its label map right."""
    photos, images = _Counter(start), {}
    for split, count in splits.items():
        for n in range(1, count + 1):
            ab = np.concatenate([photos.photo(size, size), labels(size, photos.next)], axis=1)
            images[f"{name}/{split}/{n}.jpg"] = (ab, "JPEG")
    return _archive(name, folder / archive, images)


def build_facades(folder: Path, splits: Mapping[str, int] = FACADES_SPLITS) -> Archive:
    """``facades.tar.gz``: ``facades/{train,val,test}/<n>.jpg``, 512x256 photo|label-map pairs, as the real ones."""
    return _side_by_side(folder, "facades", "facades.tar.gz", splits, 256, facade_labels, start=0)


def build_maps(folder: Path) -> Archive:
    """``maps.tar.gz``: ``maps/{train,val}/<n>.jpg``, 96x48 aerial-photo|map pairs (real: 1200x600)."""
    return _side_by_side(folder, "maps", "maps.tar.gz", MAPS_SPLITS, 48, map_tiles, start=20)


#: horse2zebra's folders and (ImageNet synset) file names: n02381460 = horse, n02391049 = zebra.
HORSE2ZEBRA = {"trainA": ("n02381460_1001", "n02381460_1010", "n02381460_1030"),
               "trainB": ("n02391049_10007", "n02391049_1004"),
               "testA": ("n02381460_120", "n02381460_1300"),
               "testB": ("n02391049_1000", "n02391049_1020")}
#: One file that is a grey JPEG, as a few of the real ones are.
HORSE2ZEBRA_GREY = "trainA/n02381460_1030.jpg"


def build_horse2zebra(folder: Path) -> Archive:
    """``horse2zebra.zip``: ``horse2zebra/{trainA,trainB,testA,testB}/*.jpg``, 64x64 (real: 256x256)."""
    photos, images = _Counter(40), {}
    for side, stems in HORSE2ZEBRA.items():
        for stem in stems:
            grey = f"{side}/{stem}.jpg" == HORSE2ZEBRA_GREY
            images[f"horse2zebra/{side}/{stem}.jpg"] = (photos.photo(64, 64, grey), "JPEG")
    return _archive("horse2zebra", folder / "horse2zebra.zip", images)


STL10_SIZES = {"train": 4, "test": 3, "unlabeled": 8}
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")


def build_stl10(folder: Path) -> Archive:
    """``stl10_binary.tar.gz``: the real files, with a few 96x96 images in each split.

    ``<split>_X.bin`` holds uint8 (N, 3, 96, 96) with each channel stored column-major (transposed),
    as the real files are; ``<split>_y.bin`` uint8 labels 1..10; ``class_names.txt`` one name a line;
    ``fold_indices.txt`` ten lines of space-separated indices into train.
    """
    photos, files, content = _Counter(60), {}, {}
    for split, n in STL10_SIZES.items():
        x = np.stack([photos.photo(96, 96).transpose(2, 0, 1) for _ in range(n)])  # (N, 3, 96, 96) row-major
        content[f"stl10_binary/{split}_X.bin"] = x
        files[f"stl10_binary/{split}_X.bin"] = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).tobytes()
        if split != "unlabeled":
            files[f"stl10_binary/{split}_y.bin"] = (np.arange(n, dtype=np.uint8) % 10 + 1).tobytes()
    files["stl10_binary/class_names.txt"] = "".join(f"{c}\n" for c in STL10_CLASSES).encode()
    n = STL10_SIZES["train"]
    files["stl10_binary/fold_indices.txt"] = "".join(f"{k % n} {(k + 1) % n}\n" for k in range(10)).encode()
    path = write_tar(folder / "stl10_binary.tar.gz", dict(sorted(files.items())))
    return Archive("STL10", path, content)


#: BSDS500 image ids per split, with (height, width): 321x481 landscape or 481x321 portrait, shrunk about 3.3x.
BSDS500 = {"train": {"100075": (96, 144), "100080": (96, 144), "105019": (144, 96)},
           "val": {"101085": (96, 144), "102061": (144, 96)},
           "test": {"100007": (96, 144), "100039": (144, 96)}}


def _bsds_ground_truth(pixels: np.ndarray) -> bytes:
    """A groundTruth .mat as BSDS publishes it: a 1xK cell of structs with Segmentation and Boundaries."""
    import scipy.io

    h, w = pixels.shape[:2]
    cell = np.empty((1, 2), dtype=object)
    for k in range(2):  # two "annotators": regions of grey levels, at two granularities
        seg = (pixels.mean(axis=2) // (64 >> k)).astype(np.uint16) + 1
        edges = np.zeros((h, w), bool)
        edges[:, 1:] |= seg[:, 1:] != seg[:, :-1]
        edges[1:] |= seg[1:] != seg[:-1]
        cell[0, k] = {"Segmentation": seg, "Boundaries": edges}
    buf = bytes_io.BytesIO()
    scipy.io.savemat(buf, {"groundTruth": cell})
    return buf.getvalue()


def build_bsds500(folder: Path) -> Archive:
    """``BSR_bsds500.tgz``: ``BSR/BSDS500/data/images/<split>/<id>.jpg`` and ``groundTruth/<split>/<id>.mat``.

    Each images folder also holds the ``Thumbs.db`` the real one has.
    """
    photos, images, extra = _Counter(80), {}, {}
    root = "BSR/BSDS500/data"
    for split, ids in BSDS500.items():
        for stem, (h, w) in ids.items():
            pixels = photos.photo(h, w)
            images[f"{root}/images/{split}/{stem}.jpg"] = (pixels, "JPEG")
            extra[f"{root}/groundTruth/{split}/{stem}.mat"] = _bsds_ground_truth(pixels)
        extra[f"{root}/images/{split}/Thumbs.db"] = b"\xd0\xcf\x11\xe0" + bytes(60)
    extra["BSR/documentation/README"] = b"Berkeley Segmentation Resources (miniature)\n"
    return _archive("BSDS500", folder / "BSR_bsds500.tgz", images, extra)


#: Set5 and Set14: the real file names and (height, width), shrunk 8x; bridge.png is grey, as the original.
SET5 = {"baby": (64, 64), "bird": (36, 36), "butterfly": (32, 32), "head": (35, 35), "woman": (43, 28)}
SET14 = {"baboon": (60, 62), "barbara": (72, 90), "bridge": (64, 64), "coastguard": (36, 44), "comic": (45, 31),
         "face": (35, 35), "flowers": (45, 62), "foreman": (36, 44), "lenna": (64, 64), "man": (64, 64),
         "monarch": (64, 96), "pepper": (64, 64), "ppt3": (82, 66), "zebra": (49, 73)}


def _sr_set(folder: Path, name: str, sizes: Mapping[str, tuple[int, int]], start: int) -> Archive:
    photos = _Counter(start)
    images = {f"{name}_HR/{stem}.png": (photos.photo(h, w, grey=stem == "bridge"), "PNG")
              for stem, (h, w) in sizes.items()}
    return _archive(name, folder / f"{name}_HR.tar.gz", images)


def build_set5(folder: Path) -> Archive:
    """``Set5_HR.tar.gz``: ``Set5_HR/<name>.png``, the five real names."""
    return _sr_set(folder, "Set5", SET5, start=100)


def build_set14(folder: Path) -> Archive:
    """``Set14_HR.tar.gz``: ``Set14_HR/<name>.png``, the fourteen real names (bridge grey)."""
    return _sr_set(folder, "Set14", SET14, start=110)


CBSD68_N = 8
CBSD68_NOISE = (5, 25)


def build_cbsd68(folder: Path) -> Archive:
    """``CBSD68-dataset.zip``: GitHub's archive of the pinned commit, ``<repo>-<commit>/CBSD68/original_png/0000.png``...

    Beside ``original_png`` lie the repository's ``noisy<sigma>/`` folders (which fetch must not count)
    and its README.
    """
    top = get("CBSD68").subdir.split("/")[0]                # CBSD68-dataset-<commit>
    photos, images = _Counter(130), {}
    for i in range(CBSD68_N):
        h, w = (96, 144) if i % 2 else (144, 96)
        clean = photos.photo(h, w)
        images[f"{top}/CBSD68/original_png/{i:04d}.png"] = (clean, "PNG")
        for sigma in CBSD68_NOISE:
            noise = np.random.default_rng(i * 100 + sigma).normal(0, sigma, clean.shape)
            images[f"{top}/CBSD68/noisy{sigma}/{i:04d}.png"] = ((clean + noise).clip(0, 255).astype(np.uint8), "PNG")
    return _archive("CBSD68", folder / "CBSD68-dataset.zip", images, {f"{top}/README.md": b"# CBSD68\n"})


#: Extended Yale B (cropped): people (yaleB01..yaleB39) and light positions (azimuth, elevation) in degrees.
YALE_PEOPLE = (1, 2, 39)
YALE_LIGHTS = ((0, 0), (35, 15), (-50, -40), (130, 20), (0, 90), (-110, 65))


def yale_name(person: int, azimuth: int, elevation: int) -> str:
    """The real file name: ``yaleB01_P00A+035E+15.pgm`` (signed, 3 and 2 digits)."""
    return f"yaleB{person:02d}_P00A{azimuth:+04d}E{elevation:+03d}.pgm"


def build_yale_b(folder: Path) -> Archive:
    """``CroppedYale.zip``: ``CroppedYale/yaleBxx/<name>.pgm``, 21x24 grey PGMs (real: 168x192).

    Each person also has the ``_P00_Ambient.pgm`` image (no light source); yaleB02 has a ``.pgm.bad``
    file, as several real folders do.
    """
    faces, images, extra = _Counter(150), {}, {}
    for person in YALE_PEOPLE:
        base = f"CroppedYale/yaleB{person:02d}"
        for az, el in YALE_LIGHTS:
            images[f"{base}/{yale_name(person, az, el)}"] = (faces.photo(24, 21, grey=True), "PPM")
        images[f"{base}/yaleB{person:02d}_P00_Ambient.pgm"] = (faces.photo(24, 21, grey=True), "PPM")
    extra[f"CroppedYale/yaleB02/{yale_name(2, 85, 20)}.bad"] = encode(faces.photo(24, 21, grey=True), "PPM")
    return _archive("yale_b_cropped", folder / "CroppedYale.zip", images, extra)


DPED_PHONES = ("iphone", "blackberry", "sony")


def build_dped(folder: Path) -> Archive:
    """``dped.gz`` (a gzipped tar despite the name): per phone, matching 100x100 phone/Canon patches.

    ``dped/<phone>/training_data/{<phone>,canon}/<n>.jpg``, ``dped/<phone>/test_data/patches/{<phone>,canon}/<n>.jpg``
    and ``dped/<phone>/test_data/full_size_test_images/<n>.jpg``. The phone patch is the Canon one,
    softened and tinted.
    """
    photos, images = _Counter(170), {}
    for phone in DPED_PHONES:
        for part, count in (("training_data", 2), ("test_data/patches", 1)):
            for n in range(count):
                canon = photos.photo(100, 100)
                soft = np.asarray(Image.fromarray(canon).resize((50, 50)).resize((100, 100)), np.float32)
                images[f"dped/{phone}/{part}/canon/{n}.jpg"] = (canon, "JPEG")
                images[f"dped/{phone}/{part}/{phone}/{n}.jpg"] = ((soft * (1.1, 1.0, 0.8)).clip(0, 255).astype(np.uint8),
                                                                  "JPEG")
        images[f"dped/{phone}/test_data/full_size_test_images/0.jpg"] = (photos.photo(75, 100), "JPEG")
    return _archive("DPED", folder / "dped.gz", images)


#: Registry name -> builder. Not here: waterloo (RAR, which nothing here can write).
BUILDERS: dict[str, Callable[[Path], Archive]] = {
    "facades": build_facades, "maps": build_maps, "horse2zebra": build_horse2zebra, "STL10": build_stl10,
    "BSDS500": build_bsds500, "Set5": build_set5, "Set14": build_set14, "CBSD68": build_cbsd68,
    "yale_b_cropped": build_yale_b, "DPED": build_dped,
}


def build_all(folder: Path, names: Iterable[str] = BUILDERS) -> dict[str, Archive]:
    """Build the miniature archives of ``names`` (all by default) in ``folder``, by registry name."""
    folder.mkdir(parents=True, exist_ok=True)
    return {name: BUILDERS[name](folder) for name in names}


# ----------------------------------------------------------------------------------------------
# Serving them
# ----------------------------------------------------------------------------------------------

class MiniServer:
    """An HTTP server for the files of ``folder`` on 127.0.0.1 (a free port), in a daemon thread.

    ``requests`` lists the paths asked for, so a test can see that a download came from here.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.requests: list[str] = []
        served = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(served.folder), **kwargs)

            def do_GET(self):  # noqa: N802
                served.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url_of(self, path: Path) -> str:
        """The address of ``path``, a file in the served folder."""
        return f"{self.url}/{urllib.parse.quote(Path(path).relative_to(self.folder).as_posix())}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "MiniServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_sources(path: Path, server: MiniServer, archives: Iterable[Archive]) -> Path:
    """Write the ``$I2I_DATA_SOURCES`` file pointing each archive's dataset at ``server``, with its checks."""
    table = {}
    for a in archives:
        table[a.name] = {"urls": [server.url_of(a.path)], "sha256": a.sha256, "size": a.size}
        if a.n_images is not None:
            table[a.name]["n_images"] = a.n_images
    Path(path).write_text(json.dumps(table, indent=1) + "\n")
    return Path(path)


@dataclass
class MiniSources:
    """Every miniature, served: ``path`` (the sources file), ``url`` (the server), ``names``, ``archives``."""

    path: Path
    url: str
    names: list[str]
    archives: dict[str, Archive]
    server: MiniServer

    def environ(self, data: Path) -> dict[str, str]:
        """The variables a subprocess (a notebook's kernel) needs to fetch the miniatures into the cache ``data``.

        Remove ``I2I_DATA_MIRROR`` from its environment too: a mirror would come first.
        """
        return {"I2I_DATA_SOURCES": str(self.path), "I2I_DATA": str(data)}


@contextmanager
def serve(folder: Path) -> Iterator[MiniSources]:
    """Build every miniature in ``folder/archives``, serve that folder, write ``folder/sources.json``."""
    folder = Path(folder)
    archives = build_all(folder / "archives")
    with MiniServer(folder / "archives") as server:
        path = write_sources(folder / "sources.json", server, archives.values())
        yield MiniSources(path, server.url, list(archives), archives, server)


# ----------------------------------------------------------------------------------------------
# Waterloo: a RAR archive, which nothing here can write
# ----------------------------------------------------------------------------------------------

RAR_MAGIC = b"Rar!\x1a\x07\x01\x00"


def build_waterloo_standin(folder: Path, n: int = 10) -> Archive:
    """A stand-in for ``exploration_database_and_code.rar``: RAR's signature, then a gzipped tar of
    ``exploration_database_and_code/pristine_images/<n>.bmp``. Only :func:`fake_unrar` unpacks it; it
    tests the code around the RAR tool (the layout, the loaders), not the RAR format."""
    photos = _Counter(200)
    images = {f"exploration_database_and_code/pristine_images/{i:05d}.bmp": (photos.photo(72, 96), "BMP")
              for i in range(1, n + 1)}
    tar = folder / "waterloo.tar.gz"
    archive = _archive("waterloo", tar, images)
    rar = folder / "exploration_database_and_code.rar"
    rar.write_bytes(RAR_MAGIC + tar.read_bytes())
    tar.unlink()
    archive.path = rar
    return archive


def fake_unrar(folder: Path) -> Path:
    """An ``unrar`` in ``folder`` (put it first on PATH) that unpacks :func:`build_waterloo_standin`'s file
    the way fetch calls the real one: ``unrar x -o+ -y ARCHIVE DEST/``."""
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / "unrar"
    tool.write_text('#!/bin/sh\ntail -c +9 "$4" | tar -xz -C "$5"\n')
    tool.chmod(0o755)
    return tool
