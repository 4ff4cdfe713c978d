import hashlib
import io
import os
import re
import stat
import time

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from i2icourse import runtime, train
from i2icourse.train import time_estimate


class NoisyCrops(Dataset):
    """Random crops plus noise from both torch's and NumPy's global RNG, as augmentations do."""

    def __init__(self, n: int = 10):
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 1, 12, 12, generator=g)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        top, left = (int(v) for v in torch.randint(0, 5, (2,)))
        x = self.images[i, :, top:top + 8, left:left + 8]
        return x + float(np.random.normal(0, 0.01)), x


def make_objects(lr=1e-2, width=4):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.Dropout(0.3),
                        nn.Conv2d(width, 1, 3, padding=1))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)

    def step_fn(batch, step):
        net.train()
        x, y = batch
        loss = nn.functional.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        return {"loss": loss.item(), "lr": sched.get_last_lr()[0]}

    return net, {"net": net, "opt": opt, "sched": sched}, step_fn


def run(steps, checkpoint, eval_fn=None):
    net, objects, step_fn = make_objects()
    hist = train.fit(step_fn, NoisyCrops(), steps=steps, batch_size=3, objects=objects, checkpoint=checkpoint,
                     checkpoint_every=2, seed=5, progress=False, eval_fn=eval_fn, eval_every=4)
    return net, objects, hist


def test_resume_is_exact(tmp_path):
    n = 7  # not a multiple of the epoch length (3 batches) nor of checkpoint_every
    runtime.seed_everything(0)
    straight, _, hist_straight = run(2 * n, tmp_path / "straight.pt")

    runtime.seed_everything(0)
    run(n, tmp_path / "resumed.pt", eval_fn=lambda s: {"noise": float(torch.rand(1))})
    torch.manual_seed(12345)  # the interruption scrambles the global RNG; the checkpoint must restore it
    np.random.seed(999)
    resumed, objects, hist_resumed = run(2 * n, tmp_path / "resumed.pt")

    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert hist_straight.values("loss") == hist_resumed.values("loss")
    assert hist_resumed.steps("loss") == list(range(1, 2 * n + 1))
    assert objects["sched"].last_epoch == 2 * n


def test_resume_detects_a_different_run(tmp_path):
    # Without restoring the RNG the continuation differs: the exactness test above can fail.
    runtime.seed_everything(0)
    straight, _, _ = run(8, None)
    runtime.seed_everything(0)
    run(4, tmp_path / "c.pt")
    net, objects, step_fn = make_objects()
    train.load_checkpoint(tmp_path / "c.pt", objects, restore_rng=False)
    torch.manual_seed(3)
    stream = train.batches(NoisyCrops(), 3, seed=5, start_step=4)
    for step in range(4, 8):
        step_fn(next(stream), step)
    assert any(not torch.equal(a, b) for a, b in zip(straight.state_dict().values(), net.state_dict().values()))


def test_complete_checkpoint_is_loaded_not_retrained(tmp_path, capsys):
    run(4, tmp_path / "c.pt")
    net, objects, step_fn = make_objects()
    calls = []
    hist = train.fit(lambda b, s: calls.append(s) or {"loss": 0.0}, NoisyCrops(), steps=4, batch_size=3,
                     objects=objects, checkpoint=tmp_path / "c.pt")
    assert calls == []
    assert len(hist.values("loss")) == 4
    assert "loaded" in capsys.readouterr().out


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    _, objects, _ = make_objects()
    path = train.save_checkpoint(tmp_path / "c.pt", 3, objects)
    good = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        train.save_checkpoint(path, 4, objects)
    assert path.read_bytes() == good  # the old checkpoint survives a failed write


def stored_state(path):
    """What torch.save wrote into a checkpoint file: the bytes after its checksum line."""
    header, payload = path.read_bytes().split(b"\n", 1)
    assert header.startswith(train.CHECKPOINT_HEADER)
    return torch.load(io.BytesIO(payload), weights_only=True)


def test_checkpoint_loads_with_weights_only_and_names_missing_objects(tmp_path):
    _, objects, _ = make_objects()
    path = train.save_checkpoint(tmp_path / "c.pt", 3, {"net": objects["net"]})
    assert stored_state(path)["step"] == 3
    with pytest.raises(KeyError, match="opt"):
        train.load_checkpoint(path, objects)
    path.write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="not a readable checkpoint"):
        train.load_checkpoint(path, objects)


def test_sampler_order_depends_only_on_position():
    full = train.ResumableSampler(5, seed=2)
    first = [i for i, _ in zip(iter(full), range(13))]
    later = [i for i, _ in zip(iter(train.ResumableSampler(5, seed=2, start=6)), range(7))]
    assert later == first[6:]
    assert sorted(first[:5]) == list(range(5)) and sorted(first[5:10]) == list(range(5))
    assert first[:5] != first[5:10]  # a new permutation every epoch


def test_history_roundtrip():
    h = train.History()
    h.log(1, {"a": 1.0, "b": 2.0})
    h.log(2, {"a": 3.0})
    h2 = train.History()
    h2.load_state_dict(h.state_dict())
    assert h2.records == h.records
    assert h2.mean_last("a", 2) == 2.0 and h2.last("b") == 2.0


# ------------------------------------------------------------------ durable, verified checkpoint files
def big_objects():
    """A model whose checkpoint is large enough (about 160 KiB) to damage 4 KiB in its middle."""
    torch.manual_seed(0)
    net = nn.Linear(200, 200)
    return {"net": net, "opt": torch.optim.SGD(net.parameters(), lr=0.1)}


def test_a_damaged_checkpoint_is_refused_with_its_name(tmp_path):
    objects = big_objects()
    path = train.save_checkpoint(tmp_path / "c.pt", 3, objects)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(b ^ 0xFF for b in data[middle:middle + 4096])
    path.write_bytes(bytes(data))
    with pytest.raises(train.CorruptCheckpointError) as info:
        train.load_checkpoint(path, big_objects())
    message = str(info.value)
    assert str(path) in message and "corrupted" in message and "Delete" in message


def test_a_cut_short_checkpoint_is_refused(tmp_path):
    path = train.save_checkpoint(tmp_path / "c.pt", 3, big_objects())
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(train.CorruptCheckpointError, match="corrupted"):
        train.load_checkpoint(path, big_objects())


def test_a_checkpoint_without_checksum_still_loads(tmp_path):
    # The file layout before checksums: torch.save of the state, nothing else.
    objects = big_objects()
    runtime.seed_everything(4)
    state = {"step": 3, "objects": {name: obj.state_dict() for name, obj in objects.items()},
             "history": {}, "rng": train.rng_state(), "extra": {"note": "old"}}
    torch.save(state, tmp_path / "old.pt")
    expected = torch.rand(3)
    fresh = {"net": nn.Linear(200, 200), "opt": None}
    fresh["opt"] = torch.optim.SGD(fresh["net"].parameters(), lr=0.1)
    loaded = train.load_checkpoint(tmp_path / "old.pt", fresh)
    assert loaded["step"] == 3 and loaded["extra"] == {"note": "old"}
    assert torch.equal(fresh["net"].weight, objects["net"].weight)
    assert torch.equal(torch.rand(3), expected)  # its RNG state was restored too


def test_the_checksum_covers_what_torch_saved(tmp_path):
    path = train.save_checkpoint(tmp_path / "c.pt", 3, big_objects())
    header, payload = path.read_bytes().split(b"\n", 1)
    assert header == train.CHECKPOINT_HEADER + hashlib.sha256(payload).hexdigest().encode()


def test_the_data_reach_the_disk_before_the_rename(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        calls.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    train.save_checkpoint(tmp_path / "c.pt", 3, big_objects())
    assert "replace" in calls and "fsync file" in calls[:calls.index("replace")]
    if os.name == "posix":
        assert "fsync folder" in calls[calls.index("replace"):]


def test_a_save_removes_temporaries_of_killed_saves(tmp_path):
    old = time.time() - train.STALE_TMP_SECONDS - 60
    killed = tmp_path / "c.pt.tmp"            # this checkpoint's, from a run killed mid-write
    other = tmp_path / "unet.pt.tmp"          # another checkpoint's, killed long ago
    live = tmp_path / "gan.pt.tmp"            # another checkpoint's, being written right now
    unrelated = tmp_path / "notes.txt.tmp"
    for file in (killed, other, live, unrelated):
        file.write_bytes(b"half a checkpoint")
    for file in (killed, other, unrelated):
        os.utime(file, (old, old))
    train.save_checkpoint(tmp_path / "c.pt", 3, big_objects())
    assert not killed.exists() and not other.exists()
    assert live.exists() and unrelated.exists()


def test_a_failed_save_leaves_no_temporary(tmp_path, monkeypatch):
    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        train.save_checkpoint(tmp_path / "c.pt", 3, big_objects())
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ checkpoints record their settings
SETTINGS = {"profile": "smoke", "steps": 4, "size": (8, 8), "rec": "l1", "field": 70}


def fit_with(path, steps=4, settings=SETTINGS, lr=1e-2, width=4, **kwargs):
    """fit on fresh objects; returns the steps it trained and the history."""
    _, objects, step_fn = make_objects(lr=lr, width=width)
    trained = []

    def counting_step(batch, step):
        trained.append(step)
        return step_fn(batch, step)

    hist = train.fit(counting_step, NoisyCrops(), steps=steps, batch_size=3, objects=objects, checkpoint=path,
                     seed=5, progress=False, settings=settings, **kwargs)
    return trained, hist


def stale_message(path, **kwargs):
    before = path.read_bytes()
    with pytest.raises(train.StaleCheckpointError) as info:
        fit_with(path, **kwargs)
    assert path.read_bytes() == before  # a refused checkpoint is left as it was
    return str(info.value)


def test_the_record_is_stored_and_the_same_settings_load(tmp_path):
    path = tmp_path / "c.pt"
    fit_with(path)
    record = stored_state(path)["extra"]["record"]
    assert record["settings"] == {**SETTINGS, "size": [8, 8]}  # a tuple is stored as a list
    assert record["objects"]["net"]["shapes"]["0.weight"] == [4, 1, 3, 3]
    assert record["objects"]["opt"]["groups"][0]["lr"] == 1e-2
    assert fit_with(path)[0] == []  # complete: loaded, not trained again


def test_a_changed_setting_is_refused_with_both_values_and_the_file(tmp_path):
    path = tmp_path / "c.pt"
    fit_with(path)
    message = stale_message(path, settings={**SETTINGS, "rec": "l2"})
    assert str(path) in message and "rec: 'l1' -> 'l2'" in message
    assert "Delete the file" in message and "I2I_CHECKPOINTS" in message and "undo the change" in message
    without_field = {k: v for k, v in SETTINGS.items() if k != "field"}
    assert "field: 70 -> (not set)" in stale_message(path, settings=without_field)
    assert "extra: (not set) -> 1" in stale_message(path, settings={**SETTINGS, "extra": 1})


def test_a_changed_optimizer_or_model_is_refused(tmp_path):
    path = tmp_path / "c.pt"
    fit_with(path)
    assert "opt: lr 0.01 -> 0.5" in stale_message(path, lr=0.5)
    message = stale_message(path, width=8)
    assert "net: parameter shapes differ (0.weight (4,1,3,3) -> (8,1,3,3), and " in message


def test_a_long_list_of_differences_is_cut_short(tmp_path):
    path = tmp_path / "c.pt"
    fit_with(path, settings={f"s{i}": i for i in range(11)})
    message = stale_message(path, settings={f"s{i}": -i for i in range(1, 11)})
    assert "s1: 1 -> -1" in message and "s0: 0 -> (not set)" not in message
    listed = [line for line in message.splitlines() if line.startswith("  ")]
    assert len(listed) == 9 and listed[-1] == "  and 3 more"  # s9, s10 and s0, which is not set now


def test_a_setting_that_is_not_a_plain_value_is_named(tmp_path):
    with pytest.raises(TypeError, match="setting 'loss'"):
        fit_with(tmp_path / "c.pt", settings={**SETTINGS, "loss": nn.L1Loss()})


def test_the_record_holds_the_learning_rate_the_optimizer_was_made_with():
    _, objects, _ = make_objects()
    fresh = train.run_record(objects)
    for _ in range(3):
        objects["opt"].step()
        objects["sched"].step()  # StepLR halves the learning rate
    assert objects["opt"].param_groups[0]["lr"] == 5e-3
    assert train.run_record(objects) == fresh


def test_more_steps_and_another_profile_train_on(tmp_path):
    path = tmp_path / "c.pt"
    fit_with(path)
    trained, hist = fit_with(path, steps=6, settings={**SETTINGS, "steps": 6, "profile": "cpu"})
    assert trained == [4, 5] and hist.steps("loss") == list(range(1, 7))


def test_a_checkpoint_without_record_loads_with_a_note(tmp_path, capsys):
    path = tmp_path / "c.pt"
    _, objects, _ = make_objects()
    history = train.History()
    history.log(1, {"loss": 1.0})
    train.save_checkpoint(path, 1, objects, history)
    trained, hist = fit_with(path, steps=2)
    assert trained == [1] and hist.steps("loss") == [1, 2]
    out = capsys.readouterr().out
    assert out.count(f"{path}: made before checkpoints recorded their settings; they cannot be checked") == 1
    assert stored_state(path)["extra"]["record"]["settings"]["rec"] == "l1"  # the new save has one


# ------------------------------------------------------------------ the time estimate
def test_a_long_run_announces_its_time_once_and_trains_the_same(capsys):
    results = []
    for announce in (True, False):
        runtime.seed_everything(0)
        net, objects, step_fn = make_objects()
        hist = train.fit(step_fn, NoisyCrops(), steps=train.ANNOUNCE_MIN_STEPS, batch_size=3, objects=objects,
                         seed=5, progress=False, announce=announce, desc="tiny")
        results.append((hist.records, [t.clone() for t in net.state_dict().values()]))
        lines = capsys.readouterr().out.splitlines()
        if announce:
            left = train.ANNOUNCE_MIN_STEPS - 1 - train.TIMED_STEPS
            assert len(lines) == 1
            assert re.fullmatch(rf"tiny: {left} steps to go, about \d+ s on this device \(cpu\)", lines[0])
        else:
            assert lines == []
    (hist_on, weights_on), (hist_off, weights_off) = results
    assert hist_on == hist_off
    assert all(torch.equal(a, b) for a, b in zip(weights_on, weights_off))


def test_a_short_run_announces_nothing(capsys):
    _, objects, step_fn = make_objects()
    train.fit(step_fn, NoisyCrops(), steps=train.ANNOUNCE_MIN_STEPS - 1, batch_size=3, objects=objects,
              progress=False)
    assert capsys.readouterr().out == ""


def test_durations_read_in_seconds_minutes_and_hours():
    assert [time_estimate._duration(s) for s in (45, 119, 150, 7000, 9000)] == ["45 s", "119 s", "2 min", "117 min",
                                                                          "2.5 h"]


def test_batches_are_pinned_when_cuda_is_there(monkeypatch):
    asked = []

    class Asked(Exception):
        """Stops fit at its loader: this machine may have no GPU to train on."""

    def spy(*args, pin_memory, **kwargs):
        asked.append(pin_memory)
        raise Asked

    monkeypatch.setattr(train, "batches", spy)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for kwargs in ({}, {"pin_memory": False}):
        _, objects, step_fn = make_objects()
        with pytest.raises(Asked):
            train.fit(step_fn, NoisyCrops(), steps=1, batch_size=3, objects=objects, progress=False, **kwargs)
    assert asked == [True, False]
