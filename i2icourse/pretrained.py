"""Trained weights shipped with the course: list them, load one, or export your own ``train`` checkpoint.

A shipped model is a ``<name>.safetensors`` file in ``i2icourse/weights/`` (package data: it is there in
a clone and in a pip install alike) and one entry of ``weights/manifest.json``, which says how it was
made and how good it is: the chapter and experiment, the settings that rebuild its generator
(:func:`i2icourse.experiments.generator`), the data, steps and seed it trained with, the training
command, the git commit, date, machine and training time, the stored dtype, its metrics on the
chapter's test sets and the file's sha256. Safetensors files hold tensors only (no pickle: loading one
runs no code), and every :func:`load` checks the sha256 first: a damaged, cut short or edited file is
refused with an error naming it, never silently replaced or downloaded again.

    from i2icourse import pretrained
    pretrained.available()             # the manifest entries, with their metrics
    net = pretrained.load("srcnn-x4")  # chapter 3's SRCNN, ready for sr_eval.upscaler(net)

The command line: ``python -m i2icourse pretrained`` lists them, ``python -m i2icourse apply --pretrained
NAME IN... --out DIR`` applies one, ``python -m i2icourse train ... --init NAME`` fine-tunes one, and
``python -m i2icourse.pretrained export CHECKPOINT NAME`` ships a checkpoint of ``train``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from i2icourse import experiments

#: Where the shipped models live: ``<name>.safetensors`` files and ``manifest.json``.
WEIGHTS = Path(__file__).resolve().parent / "weights"
#: The manifest's file name inside a weights folder.
MANIFEST = "manifest.json"
#: Chapter 3's test sets (the seed paper's Table 2: Set5, Set14, BSD200) by the data layer's names.
SR_TEST_SETS = {"Set5": "Set5", "Set14": "Set14", "BSD200": "BSDS500/test"}
#: fp16 is stored when no metric moves by this much (dB of PSNR, or SSIM) against fp32.
FP16_TOLERANCE = 0.01


class PretrainedError(Exception):
    """A shipped model that cannot be used: unknown name, missing, damaged or edited file."""


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    """The hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(folder: Path | None = None) -> list[dict[str, Any]]:
    """The entries of ``folder``'s manifest, in its order (empty if there is none)."""
    folder = WEIGHTS if folder is None else folder
    path = folder / MANIFEST
    if not path.is_file():
        return []
    return list(json.loads(path.read_text())["models"])


def available(folder: Path | None = None) -> list[dict[str, Any]]:
    """The shipped models: one manifest entry each (name, chapter, settings, metrics, ...)."""
    folder = WEIGHTS if folder is None else folder
    return manifest(folder)


def entry(name: str, folder: Path | None = None) -> dict[str, Any]:
    """The manifest entry of the model ``name``; a :class:`PretrainedError` listing the known ones otherwise."""
    folder = WEIGHTS if folder is None else folder
    for item in manifest(folder):
        if item["name"] == name:
            return item
    known = ", ".join(item["name"] for item in manifest(folder)) or "none"
    raise PretrainedError(f"{folder / MANIFEST}: no shipped model {name!r}; known: {known}")


def weights_file(name: str, folder: Path | None = None) -> Path:
    """The safetensors file of the model ``name`` (whether or not it exists)."""
    folder = WEIGHTS if folder is None else folder
    return folder / f"{name}.safetensors"


def read_state(name: str, folder: Path | None = None) -> dict[str, torch.Tensor]:
    """The model's tensors as fp32, after checking the file's sha256 against the manifest."""
    folder = WEIGHTS if folder is None else folder
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    item = entry(name, folder)
    path = weights_file(name, folder)
    if not path.is_file():
        raise PretrainedError(f"{path}: the weights of {name!r} are missing")
    found = sha256(path)
    if found != item["sha256"]:
        raise PretrainedError(f"{path}: sha256 {found[:12]}... is not the manifest's {item['sha256'][:12]}...; "
                              "the file is damaged or was changed (restore it from the course's repository)")
    try:
        state = load_file(path)
    except SafetensorError as e:
        raise PretrainedError(f"{path}: not a readable safetensors file ({e})") from None
    return {key: value.float() for key, value in state.items()}


def build(item: Mapping[str, Any]) -> nn.Module:
    """A fresh (untrained) generator of a manifest entry, built from its settings by its experiment."""
    return experiments.generator(item["settings"])


def load(name: str, device: torch.device | str = "cpu", folder: Path | None = None) -> nn.Module:
    """The shipped model ``name`` in eval mode on ``device``: built from the manifest's settings, its
    weights checked (sha256) and loaded strictly (a missing or extra tensor is an error)."""
    folder = WEIGHTS if folder is None else folder
    item = entry(name, folder)
    net = build(item)
    state = read_state(name, folder)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise PretrainedError(f"{weights_file(name, folder)}: the weights do not fit the manifest's model: "
                              f"{' '.join(str(e).split())[:300]}") from None
    return net.to(device).eval()


# ----------------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------------

def sr_metrics(net: nn.Module, scale: int, sets: Mapping[str, str] = SR_TEST_SETS) -> dict[str, dict[str, float]]:
    """Chapter 3's test protocol (:mod:`i2icourse.sr_eval`) at ``scale``: per set, the mean Y PSNR and
    SSIM of ``net`` and of bicubic, ``{"Set5": {"PSNR": .., "SSIM": .., "bicubic PSNR": .., ...}}``."""
    from i2icourse import sr_eval

    photos = {label: sr_eval.load_set(name) for label, name in sets.items()}
    table = sr_eval.per_set(sr_eval.evaluate({"bicubic": sr_eval.bicubic, "model": sr_eval.upscaler(net)},
                                             photos, scale=scale))
    return {label: {"images": len(photos[label]),
                    "PSNR": round(float(table.loc[(label, "model"), "PSNR"]), 4),
                    "SSIM": round(float(table.loc[(label, "model"), "SSIM"]), 4),
                    "bicubic PSNR": round(float(table.loc[(label, "bicubic"), "PSNR"]), 4),
                    "bicubic SSIM": round(float(table.loc[(label, "bicubic"), "SSIM"]), 4)} for label in sets}


def metrics(net: nn.Module, settings: Mapping[str, Any], sets: Mapping[str, str] | None = None
            ) -> dict[str, dict[str, float]]:
    """The metrics of a generator on its chapter's test sets (so far chapter 3's: SR PSNR/SSIM)."""
    if settings["experiment"] != "srcnn":
        raise PretrainedError(f"no test protocol for {settings['experiment']!r} models yet (only srcnn's)")
    return sr_metrics(net, settings["scale"], SR_TEST_SETS if sets is None else sets)


def largest_change(a: Mapping[str, Mapping[str, float]], b: Mapping[str, Mapping[str, float]]) -> float:
    """The largest absolute difference between the model's PSNR/SSIM in two :func:`metrics` results."""
    return max(abs(a[s][k] - b[s][k]) for s in a for k in ("PSNR", "SSIM"))


# ----------------------------------------------------------------------------------------------
# Exporting
# ----------------------------------------------------------------------------------------------

#: The recorded settings a shipped model keeps: what rebuilds the generator and what ``apply`` reads.
KEPT_SETTINGS = ("experiment", "model", "size", "scale")


def _git_commit() -> str:
    """The repository's commit, with ``+dirty`` when the working tree has changes; ``unknown`` outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty.strip() else "")


def train_command(P: Mapping[str, Any], data: str) -> str:
    """The ``python -m i2icourse train`` line that trains what the checkpoint settings ``P`` record:
    its profile, with ``--set`` for each setting that differs from the profile's."""
    experiment = experiments.EXPERIMENTS[P["experiment"]]
    profile = {**experiment.profiles[P["profile"]], **experiment.options[P["profile"]]}
    changes = [f"{key}={P[key]!r}" for key in profile if key in P and P[key] != profile[key]]
    words = ["python", "-m", "i2icourse", "train", experiment.name, "--data", data, "--profile", P["profile"]]
    for change in changes:
        words += ["--set", change]
    return shlex.join(words)


def export(checkpoint: str | Path, name: str, *, chapter: str | None = None, train_seconds: float | None = None,
           machine: str | None = None, folder: Path | None = None, dtype: str = "auto",
           sets: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Ship a checkpoint of ``python -m i2icourse train`` as ``folder/<name>.safetensors`` plus its
    manifest entry (replacing one of the same name), and return the entry.

    The metrics are measured here, on the chapter's test sets, for fp32 and for fp16-rounded weights;
    ``dtype="auto"`` stores fp16 when no metric moves by :data:`FP16_TOLERANCE` or more, else fp32.
    ``train_seconds`` defaults to the training time the checkpoint's history logged.
    """
    folder = WEIGHTS if folder is None else folder
    from safetensors.torch import save_file

    from i2icourse.cli import recorded_generator, recorded_settings
    from i2icourse.data.photos import load_photos

    path = Path(checkpoint)
    P, objects = recorded_settings(path)
    experiment = experiments.EXPERIMENTS[P["experiment"]]
    net = recorded_generator(path, P, objects[experiment.weights]).eval()
    fp32 = metrics(net, P, sets)
    half = build({"settings": P})
    half.load_state_dict({k: v.half().float() for k, v in net.state_dict().items()})
    fp16 = metrics(half.eval(), P, sets)
    change = largest_change(fp32, fp16)
    if dtype == "auto":
        dtype = "float16" if change < FP16_TOLERANCE else "float32"
    stored = {k: v.detach().to(getattr(torch, dtype)).contiguous() for k, v in net.state_dict().items()}
    folder.mkdir(parents=True, exist_ok=True)
    target = weights_file(name, folder)
    save_file(stored, str(target), metadata={"name": name, "experiment": experiment.name})
    target.chmod(0o644)                                # safetensors writes 0600; package data is readable
    from i2icourse import train
    state = train.load_checkpoint(path, {}, restore_rng=False)
    seconds = train_seconds
    if seconds is None:
        logged = state.get("history", {}).get("seconds")  # (steps, 2): step, seconds so far
        seconds = float(logged[-1, 1]) if logged is not None and len(logged) else None
    data = P.get("data", {}).get("path")
    item = {
        "name": name,
        "chapter": chapter or experiment.chapter,
        "experiment": experiment.name,
        "settings": {key: P[key] for key in KEPT_SETTINGS if key in P},
        "data": {"name": data.partition("/")[0], "split": data.partition("/")[2] or None,
                 "images": len(load_photos(data)), "files": P["data"].get("files")},
        "steps": P["steps"],
        "seed": 0,
        "profile": P["profile"],
        "command": train_command(P, data),
        "commit": _git_commit(),
        "date": time.strftime("%Y-%m-%d", time.gmtime(path.stat().st_mtime)),
        "machine": machine or f"{platform.machine()} {platform.processor() or platform.system()}, "
                              f"torch {torch.__version__}, CPU",
        "train_seconds": None if seconds is None else round(seconds, 1),
        "dtype": dtype,
        "fp16_change": round(change, 5),
        "metrics": fp32 if dtype == "float32" else fp16,
        "sha256": sha256(target),
    }
    entries = [e for e in manifest(folder) if e["name"] != name] + [item]
    (folder / MANIFEST).write_text(json.dumps({"models": entries}, indent=1) + "\n")
    return item


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m i2icourse.pretrained export CHECKPOINT NAME [--seconds S] [--machine M]``."""
    p = argparse.ArgumentParser(prog="python -m i2icourse.pretrained")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="ship a checkpoint of 'train' as weights/<NAME>.safetensors")
    e.add_argument("checkpoint")
    e.add_argument("name")
    e.add_argument("--seconds", type=float, default=None, help="training time (default: the checkpoint's log)")
    e.add_argument("--machine", default=None, help="the training machine, in words")
    e.add_argument("--dtype", choices=("auto", "float16", "float32"), default="auto")
    args = p.parse_args(argv)
    item = export(args.checkpoint, args.name, train_seconds=args.seconds, machine=args.machine, dtype=args.dtype)
    print(json.dumps(item, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
