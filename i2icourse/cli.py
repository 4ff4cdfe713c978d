"""The command line: train an experiment of the course on your own data, then apply it to your photos.

    python -m i2icourse train ssim-maps --data DIR           (photos: distorted, with their SSIM maps)
    python -m i2icourse train autoencoder --data DIR         (photos: grey crops)
    python -m i2icourse train pix2pix --data facades --set "direction='BtoA'"
    python -m i2icourse train kl-pix2pix --data DIR          (DIR/train/ or DIR: A|B images)
    python -m i2icourse train cyclegan --data DIR            (DIR/trainA/, DIR/trainB/)
    python -m i2icourse train srcnn --data DIR --profile cpu --steps 500
    python -m i2icourse train flow --data DIR                (photos: x4 super-resolution by flow matching)
    python -m i2icourse apply CHECKPOINT photo.jpg ... --out results/
    python -m i2icourse pretrained                           (the models shipped with the course)
    python -m i2icourse apply --pretrained srcnn-x4 photo.jpg --out results/
    python -m i2icourse train srcnn --data DIR --init srcnn-x4   (fine-tune a shipped model)

``train`` reads the experiment's profile (:mod:`i2icourse.experiments`, the settings its chapter
trains with; ``--profile``, default the active run profile), changes single values with ``--set
key=value`` (Python literals, checked as ``I2I_SETTINGS`` is) and trains with
:func:`i2icourse.train.fit`: a progress bar, atomic checkpoints, and an exact resume when run again,
so ``--steps 2000`` after ``--steps 1000`` trains the second thousand only. At every evaluation it
saves a grid of sample inputs (top row) and outputs (bottom row). The checkpoint records the data
(a folder's resolved path and a digest of its files): each folder has its own default checkpoint,
and a ``--checkpoint`` trained on other data is refused, never resumed.

``apply`` rebuilds the generator from what the checkpoint records, loads its weights and runs it over
each photo at full size, tile by tile with blended overlaps (:func:`i2icourse.tiling.tiled_apply`):
``<stem>_out.png``, the photo's size (SRCNN: ``scale`` times it; ssim-maps: its grey SSIM map;
autoencoder: its grey reconstruction), in the photos' folders relative to the folder they share
(``a/x.png b/x.png`` -> ``OUT/a/x_out.png OUT/b/x_out.png``). It replaces an existing file only with
``--overwrite``. Errors are one line, exit status 1.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torchvision.utils import make_grid
from tqdm.auto import tqdm

from i2icourse import distributed, images, runtime, train
from i2icourse.experiments import EXPERIMENTS, Experiment, configure, data_record, generator, run_checkpoint

#: How many training items the sample grids show.
SAMPLES = 4


class CommandError(Exception):
    """A mistake in what the command was asked to do, reported as one line without a traceback."""


# ----------------------------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------------------------

def fixed_inputs(experiment: Experiment, dataset: torch.utils.data.Dataset, n: int = SAMPLES) -> torch.Tensor:
    """The network inputs of the first ``n`` items, drawn once with their own seed: the same crops at
    every evaluation, and the training's random stream untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torch.stack([experiment.inputs(dataset[i]) for i in range(min(n, len(dataset)))])


def save_samples(experiment: Experiment, net: torch.nn.Module, inputs: torch.Tensor, path: Path) -> Path:
    """A grid of ``inputs`` (top row) and the generator's outputs for them (bottom row), saved to ``path``."""
    outputs = experiment.translator(net)(inputs)
    channels = max(inputs.shape[1], outputs.shape[1])  # a grey row beside a colour one is shown grey in RGB
    grid = make_grid(torch.cat([inputs.expand(-1, channels, -1, -1), outputs.expand(-1, channels, -1, -1)]),
                     nrow=len(inputs), padding=2, pad_value=1.0)
    return images.save_image(grid, path)


#: The networks of each experiment's recipe that train: under torchrun each is wrapped in DDP.
NETWORKS = {"pix2pix": ("G", "D"), "kl-pix2pix": ("G", "D"), "cyclegan": ("G", "F", "D_A", "D_B"), "srcnn": ("model",),
            "ssim-maps": ("G", "D"), "autoencoder": ("model",), "flow": ("model",)}


def _data_text(data: Mapping[str, Any]) -> str:
    """A :func:`i2icourse.experiments.data_record` in words: the path, and the files' digest shortened."""
    files = data.get("files")
    return f"{data.get('path')}" + (f" (files {files[:8]})" if isinstance(files, str) else "")


def check_same_data(path: Path, data: Mapping[str, Any]) -> None:
    """Refuse to resume the checkpoint at ``path`` (if there is one) when it was trained on other data
    than ``data``: another folder, or the same folder with other files."""
    if not path.exists():
        return
    try:
        P, _ = recorded_state(path)
    except CommandError:  # not one of train's checkpoints: fit says what is wrong with it
        return
    trained = P.get("data")
    if isinstance(trained, Mapping) and trained != data:
        raise CommandError(f"{path}: trained on {_data_text(trained)}, not on {_data_text(data)}; "
                           "give another --checkpoint, or leave it out (each folder has its own)")


def _train(args: argparse.Namespace) -> None:
    """``train``: build the experiment, train (or resume) it with ``fit``, save sample grids."""
    experiment = EXPERIMENTS[args.experiment]
    changes = list(args.set) + ([f"steps={args.steps}"] if args.steps is not None else [])
    P = configure(experiment, args.profile, changes)
    P["data"] = data_record(args.data)
    if args.init:
        P["init"] = args.init                          # part of the record: a resume must start from it too
    checkpoint = Path(args.checkpoint) if args.checkpoint else run_checkpoint(P, args.data)
    check_same_data(checkpoint, P["data"])
    out = Path(args.out) if args.out else checkpoint.with_name(checkpoint.stem + "_samples")
    rank, world_size, device = distributed.setup()    # one process, unless started by torchrun
    if args.device and world_size == 1:
        device = runtime.device(args.device)
    runtime.seed_everything(0)
    recipe, net = experiment.build(P, device)
    if args.init:                                      # start from a shipped model (fit's resume still wins)
        net.load_state_dict(pretrained_state(args.init, P))
    for name in NETWORKS[experiment.name]:            # gradients averaged over the processes (DDP)
        setattr(recipe, name, distributed.data_parallel(getattr(recipe, name)))
    dataset = experiment.dataset(args.data, P)
    inputs = fixed_inputs(experiment, dataset)

    def evaluate(step: int) -> dict[str, float]:
        if rank == 0:                                  # net is the bare generator: no DDP exchange here
            tqdm.write(f"samples: {save_samples(experiment, net, inputs, out / f'step{step:07d}.png')}")
        return {}

    train.fit(recipe.step, dataset, steps=P["steps"], batch_size=P["batch"], objects=recipe.objects(),
              checkpoint=checkpoint, settings=P, eval_fn=evaluate, eval_every=P["eval_every"], seed=0,
              desc=experiment.name)
    if rank == 0:
        print(f"checkpoint: {checkpoint} ({P['steps']} steps, profile {P['profile']}"
              + (f", {world_size} processes" if world_size > 1 else "") + ")")
    distributed.cleanup()


def pretrained_state(name: str, P: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The weights of the shipped model ``name`` (:mod:`i2icourse.pretrained`) for a run of settings ``P``;
    a :class:`CommandError` when the run's settings differ from the ones the model was built with."""
    from i2icourse import pretrained

    try:
        item = pretrained.entry(name)
        differ = [f"{key}={P.get(key)!r} (the model: {value!r})" for key, value in item["settings"].items()
                  if P.get(key) != value]
        if differ:
            raise CommandError(f"--init {name}: the run's settings differ from the model's: {'; '.join(differ)}")
        return pretrained.read_state(name)
    except pretrained.PretrainedError as e:
        raise CommandError(str(e)) from None


def _pretrained(args: argparse.Namespace) -> None:
    """``pretrained``: the shipped models, one line each with their metrics."""
    from i2icourse import pretrained

    for item in pretrained.available():
        scores = "; ".join(f"{s} {m['PSNR']:.2f} dB / {m['SSIM']:.4f} (bicubic {m['bicubic PSNR']:.2f} dB)"
                           for s, m in item["metrics"].items())
        print(f"{item['name']}: {item['experiment']} (chapter {item['chapter']}), {item['steps']} steps, "
              f"{item['dtype']}; {scores}")


# ----------------------------------------------------------------------------------------------
# apply
# ----------------------------------------------------------------------------------------------

def recorded_state(path: Path) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """``(settings, objects)`` as a checkpoint written by :func:`i2icourse.train.checkpoints.save_checkpoint` holds
    them, checked to be what that writes; a :class:`CommandError` for any other file, a damaged or cut
    short one included, and for a checkpoint without a record of its settings."""
    if not path.is_file():
        raise CommandError(f"{path}: no such checkpoint file")
    try:
        state = train.load_checkpoint(path, {}, restore_rng=False)  # weights_only; nothing loaded yet
    except train.CorruptCheckpointError as e:  # one line, without the loader's own long explanation
        message = " ".join(str(e).split())
        raise CommandError(message if len(message) < 300 else message.split(" (")[0] + ".") from None
    if not (isinstance(state, Mapping) and isinstance(state.get("extra"), Mapping)
            and isinstance(state.get("objects"), Mapping)):
        raise CommandError(f"{path}: not a checkpoint of this course (no 'objects' and 'extra' in it)")
    record = state["extra"].get("record")
    if record is None:
        raise CommandError(f"{path}: the checkpoint has no record of its settings; apply needs one written "
                           "by 'python -m i2icourse train'")
    if not isinstance(record, Mapping) or not isinstance(record.get("settings"), Mapping):
        raise CommandError(f"{path}: the checkpoint's record has no settings")
    return dict(record["settings"]), state["objects"]


#: The settings ``apply`` needs from a checkpoint: the type each must have, in words.
NEEDED = {"experiment": (str, "a string"), "model": (Mapping, "a dict"), "size": (int, "an integer")}


def recorded_settings(path: Path) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """``(settings, objects)`` of a checkpoint written by ``train``; a :class:`CommandError` naming what is
    missing or wrong for any other checkpoint (a notebook's, one written before checkpoints had records)."""
    P, objects = recorded_state(path)
    missing = [key for key in NEEDED if key not in P]
    if missing:
        raise CommandError(f"{path}: the checkpoint's settings have no {', '.join(missing)} (it was not written "
                           "by 'python -m i2icourse train', e.g. a notebook's); apply cannot rebuild its generator")
    for key, (kind, words) in NEEDED.items():
        if not isinstance(P[key], kind) or isinstance(P[key], bool):
            raise CommandError(f"{path}: the checkpoint's setting {key}={P[key]!r} is a {type(P[key]).__name__}, "
                               f"not {words}")
    if P["experiment"] not in EXPERIMENTS:
        raise CommandError(f"{path}: unknown experiment {P['experiment']!r}; known: {', '.join(EXPERIMENTS)}")
    return P, objects


def recorded_generator(path: Path, P: Mapping[str, Any], state: Any) -> torch.nn.Module:
    """The generator that the checkpoint's settings ``P`` describe, with the weights ``state`` loaded;
    a :class:`CommandError` when the recorded arguments do not build it or the weights do not fit it."""
    experiment = EXPERIMENTS[P["experiment"]]
    try:
        net = generator(P)
    except (TypeError, ValueError) as e:
        raise CommandError(f"{path}: the recorded model {dict(P['model'])} does not build a "
                           f"{experiment.network.__name__}: {e}") from None
    if not isinstance(state, Mapping):
        raise CommandError(f"{path}: the generator's state is a {type(state).__name__}, not a state dict")
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        problems = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]
        raise CommandError(f"{path}: the weights do not fit the recorded model ({len(problems)} problems; "
                           f"the first: {problems[0] if problems else e})") from None
    return net


def output_paths(inputs: Sequence[str], out: Path) -> list[Path]:
    """Where ``apply`` writes each input's result: ``<stem>_out.png`` in ``out``, in the input's folder
    relative to the folder all inputs share, so photos of one name in two folders keep two outputs;
    two inputs of one stem in one folder (``x.png``, ``x.jpg``) are told apart by their suffixes."""
    sources = [Path(s).resolve() for s in inputs]
    twice = next((s for s, r in zip(inputs, sources) if sources.count(r) > 1), None)
    if twice is not None:
        raise CommandError(f"{twice}: given twice")
    common = Path(os.path.commonpath([s.parent for s in sources]))
    folders = [out / s.parent.relative_to(common) for s in sources]
    stems = [(folder, s.stem) for folder, s in zip(folders, sources)]
    return [folder / (f"{s.stem}_{s.suffix.lstrip('.')}_out.png" if stems.count((folder, s.stem)) > 1
                      else f"{s.stem}_out.png") for folder, s in zip(folders, sources)]


def _apply(args: argparse.Namespace) -> None:
    """``apply``: the checkpoint's generator over each input photo, saved as ``<stem>_out.png`` in ``--out``."""
    if args.pretrained:                                # every path is an input; the model is shipped
        from i2icourse import pretrained
        args.inputs = [args.checkpoint, *args.inputs]
        path = pretrained.weights_file(args.pretrained)
        try:
            P = dict(pretrained.entry(args.pretrained)["settings"])
            objects = {EXPERIMENTS[P["experiment"]].weights: pretrained.read_state(args.pretrained)}
        except pretrained.PretrainedError as e:
            raise CommandError(str(e)) from None
    else:
        if not args.inputs:
            raise CommandError("apply: give a checkpoint and at least one image (or --pretrained NAME and images)")
        path = Path(args.checkpoint)
        P, objects = recorded_settings(path)
    experiment = EXPERIMENTS[P["experiment"]]
    key = experiment.weights
    if args.reverse:
        if experiment.reverse is None:
            raise CommandError(f"--reverse: {experiment.name} has one generator only; only cyclegan has a reverse one")
        key = experiment.reverse
    if key not in objects:
        raise CommandError(f"{path}: the checkpoint holds no generator state {key!r} (it holds {sorted(objects)})")
    targets = output_paths(args.inputs, Path(args.out))
    existing = [t for t in targets if t.exists()]
    if existing and not args.overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise CommandError(f"{existing[0]}{more}: exists already; pass --overwrite to replace it")
    net = recorded_generator(path, P, objects[key]).to(runtime.device(args.device))
    tile = args.tile or P["size"]
    overlap = tile // 4 if args.overlap is None else args.overlap
    for source, target in zip(args.inputs, targets):
        image = images.load_image(source)
        try:
            result = experiment.apply(net, image, P, tile, overlap)
        except KeyError as e:
            raise CommandError(f"{path}: the checkpoint's settings have no {e.args[0]}") from None
        images.save_image(result, target)
        print(f"{source} -> {target} ({image.shape[-1]}x{image.shape[-2]} -> {result.shape[-1]}x{result.shape[-2]})")


# ----------------------------------------------------------------------------------------------
# The parser
# ----------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    """The command line's parser: the commands ``train`` and ``apply``."""
    p = argparse.ArgumentParser(prog="python -m i2icourse", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="{apply,pretrained,train}")
    a = sub.add_parser("apply", help="run a trained generator over photos of any size")
    a.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint written by 'train' (with --pretrained: an image)")
    a.add_argument("inputs", nargs="*", metavar="IN", help="image files")
    a.add_argument("--pretrained", default=None, metavar="NAME",
                   help="apply a shipped model (python -m i2icourse pretrained lists them) instead of a checkpoint")
    a.add_argument("--out", required=True,
                   help="folder for the outputs, <stem>_out.png, in the inputs' folders relative to their shared one")
    a.add_argument("--overwrite", action="store_true", help="replace outputs that exist already")
    a.add_argument("--tile", type=int, default=None, help="tile side (default: the training size)")
    a.add_argument("--overlap", type=int, default=None, help="blended overlap of the tiles (default: tile // 4)")
    a.add_argument("--reverse", action="store_true", help="cyclegan: apply F (B -> A) instead of G (A -> B)")
    a.add_argument("--device", default=None, help="cpu, cuda, mps... (default: I2I_DEVICE, else the best one)")
    t = sub.add_parser("train", help="train an experiment on a folder or a registered dataset")
    t.add_argument("experiment", choices=sorted(EXPERIMENTS))
    t.add_argument("--data", required=True, metavar="DIR|NAME",
                   help="pix2pix: DIR/train/ or DIR of A|B images; cyclegan: DIR/trainA, DIR/trainB; "
                        "srcnn, ssim-maps, autoencoder: a folder of photos; or a registered dataset's name")
    t.add_argument("--profile", choices=runtime.PROFILES, default=None,
                   help="the sizes to train at (default: I2I_PROFILE, else gpu with CUDA, else cpu)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change one setting of the profile, a Python literal: --set lr=1e-4 --set \"direction='BtoA'\"")
    t.add_argument("--steps", type=int, default=None, help="the length of training (the same as --set steps=N)")
    t.add_argument("--checkpoint", default=None,
                   help="checkpoint file (default: $I2I_CHECKPOINTS/<profile>/cli/<experiment>_<data>.pt, "
                        "<data> a dataset's name or a folder's name and a digest of its path and files)")
    t.add_argument("--out", default=None, help="folder of the sample grids (default: next to the checkpoint)")
    t.add_argument("--init", default=None, metavar="NAME",
                   help="start the generator from a shipped model of the same settings (fine-tuning)")
    t.add_argument("--device", default=None, help="cpu, cuda, mps... (default: I2I_DEVICE, else the best one)")
    sub.add_parser("pretrained", help="list the models shipped with the course, with their metrics")
    return p


_COMMANDS = {"train": _train, "apply": _apply, "pretrained": _pretrained}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); 0 on success, 1 after an error message."""
    args = _parser().parse_args(argv)
    try:
        _COMMANDS[args.command](args)
    except (CommandError, OSError, ValueError, LookupError, RuntimeError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0
