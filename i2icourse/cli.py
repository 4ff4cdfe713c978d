"""The command line: train an experiment of the course on your own data, then apply it to your photos.

    python -m i2icourse train pix2pix --data facades --set "direction='BtoA'"
    python -m i2icourse train cyclegan --data DIR            (DIR/trainA/, DIR/trainB/)
    python -m i2icourse train srcnn --data DIR --profile cpu --steps 500
    python -m i2icourse apply CHECKPOINT photo.jpg ... --out results/

``train`` reads the experiment's profile (:mod:`i2icourse.experiments`; ``--profile``, default the
active run profile), changes single values with ``--set key=value`` (Python literals, checked as
``I2I_SETTINGS`` is) and trains with :func:`i2icourse.train.fit`: a progress bar, atomic checkpoints,
and an exact resume when run again, so ``--steps 2000`` after ``--steps 1000`` trains the second
thousand only. At every evaluation it saves a grid of sample inputs (top row) and outputs (bottom row).

``apply`` rebuilds the generator from what the checkpoint records, loads its weights and runs it over
each photo at full size, tile by tile with blended overlaps (:func:`i2icourse.tiling.tiled_apply`):
``<stem>_out.png``, the photo's size (SRCNN: ``scale`` times it). Errors are one line, exit status 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torchvision.utils import make_grid
from tqdm.auto import tqdm

from i2icourse import distributed, io, runtime, train
from i2icourse.experiments import EXPERIMENTS, Experiment, checkpoint_path, data_name, generator, settings

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
    grid = make_grid(torch.cat([inputs.expand(-1, outputs.shape[1], -1, -1), outputs]), nrow=len(inputs),
                     padding=2, pad_value=1.0)
    return io.save_image(grid, path)


#: The networks of each experiment's recipe that train: under torchrun each is wrapped in DDP.
NETWORKS = {"pix2pix": ("G", "D"), "cyclegan": ("G", "F", "D_A", "D_B"), "srcnn": ("model",)}


def _train(args: argparse.Namespace) -> None:
    """``train``: build the experiment, train (or resume) it with ``fit``, save sample grids."""
    experiment = EXPERIMENTS[args.experiment]
    changes = list(args.set) + ([f"steps={args.steps}"] if args.steps is not None else [])
    P = settings(experiment, args.profile, changes)
    P["data"] = data_name(args.data)
    checkpoint = Path(args.checkpoint) if args.checkpoint else checkpoint_path(P, args.data)
    out = Path(args.out) if args.out else checkpoint.with_name(checkpoint.stem + "_samples")
    rank, world_size, device = distributed.setup()    # one process, unless started by torchrun
    if args.device and world_size == 1:
        device = runtime.device(args.device)
    runtime.seed_everything(0)
    recipe, net = experiment.build(P, device)
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


# ----------------------------------------------------------------------------------------------
# apply
# ----------------------------------------------------------------------------------------------

def recorded_settings(path: Path) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """``(settings, objects)`` of a checkpoint written by ``train``; a :class:`CommandError` naming what is
    missing for any other checkpoint (a notebook's, one written before checkpoints had records)."""
    if not path.is_file():
        raise CommandError(f"{path}: no such checkpoint file")
    state = train.load_checkpoint(path, {}, restore_rng=False)  # weights_only; nothing loaded yet
    record = state["extra"].get("record")
    if record is None:
        raise CommandError(f"{path}: the checkpoint has no record of its settings; apply needs one written "
                           "by 'python -m i2icourse train'")
    P = record["settings"]
    missing = [key for key in ("experiment", "model", "size") if key not in P]
    if missing:
        raise CommandError(f"{path}: the checkpoint's settings have no {', '.join(missing)} (it was not written "
                           "by 'python -m i2icourse train', e.g. a notebook's); apply cannot rebuild its generator")
    if P["experiment"] not in EXPERIMENTS:
        raise CommandError(f"{path}: unknown experiment {P['experiment']!r}; known: {', '.join(EXPERIMENTS)}")
    return P, state["objects"]


def _apply(args: argparse.Namespace) -> None:
    """``apply``: the checkpoint's generator over each input photo, saved as ``<stem>_out.png`` in ``--out``."""
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
    net = generator(P)
    net.load_state_dict(objects[key])
    net.to(runtime.device(args.device))
    tile = args.tile or P["size"]
    overlap = tile // 4 if args.overlap is None else args.overlap
    out = Path(args.out)
    for source in args.inputs:
        image = io.load_image(source)
        result = experiment.apply(net, image, P, tile, overlap)
        target = io.save_image(result, out / f"{Path(source).stem}_out.png")
        print(f"{source} -> {target} ({image.shape[-1]}x{image.shape[-2]} -> {result.shape[-1]}x{result.shape[-2]})")


# ----------------------------------------------------------------------------------------------
# The parser
# ----------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    """The command line's parser: the commands ``train`` and ``apply``."""
    p = argparse.ArgumentParser(prog="python -m i2icourse", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="{apply,train}")
    a = sub.add_parser("apply", help="run a trained generator over photos of any size")
    a.add_argument("checkpoint", help="a checkpoint written by 'train'")
    a.add_argument("inputs", nargs="+", metavar="IN", help="image files")
    a.add_argument("--out", required=True, help="folder for the outputs, <stem>_out.png")
    a.add_argument("--tile", type=int, default=None, help="tile side (default: the training size)")
    a.add_argument("--overlap", type=int, default=None, help="blended overlap of the tiles (default: tile // 4)")
    a.add_argument("--reverse", action="store_true", help="cyclegan: apply F (B -> A) instead of G (A -> B)")
    a.add_argument("--device", default=None, help="cpu, cuda, mps... (default: I2I_DEVICE, else the best one)")
    t = sub.add_parser("train", help="train an experiment on a folder or a registered dataset")
    t.add_argument("experiment", choices=sorted(EXPERIMENTS))
    t.add_argument("--data", required=True, metavar="DIR|NAME",
                   help="pix2pix: DIR/train/ or DIR of A|B images; cyclegan: DIR/trainA, DIR/trainB; "
                        "srcnn: a folder of photos; or a registered dataset's name")
    t.add_argument("--profile", choices=runtime.PROFILES, default=None,
                   help="the sizes to train at (default: I2I_PROFILE, else gpu with CUDA, else cpu)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change one setting of the profile, a Python literal: --set lr=1e-4 --set \"direction='BtoA'\"")
    t.add_argument("--steps", type=int, default=None, help="the length of training (the same as --set steps=N)")
    t.add_argument("--checkpoint", default=None,
                   help="checkpoint file (default: $I2I_CHECKPOINTS/<profile>/cli/<experiment>_<data>.pt)")
    t.add_argument("--out", default=None, help="folder of the sample grids (default: next to the checkpoint)")
    t.add_argument("--device", default=None, help="cpu, cuda, mps... (default: I2I_DEVICE, else the best one)")
    return p


_COMMANDS = {"train": _train, "apply": _apply}


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
