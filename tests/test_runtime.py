import random

import numpy as np
import pytest
import torch

from i2icourse import runtime


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("I2I_PROFILE", "smoke")
    assert runtime.profile() == "smoke"
    monkeypatch.setenv("I2I_PROFILE", "  CPU ")
    assert runtime.profile() == "cpu"
    monkeypatch.setenv("I2I_PROFILE", "fast")
    with pytest.raises(ValueError, match="smoke, cpu, gpu, full"):
        runtime.profile()


def test_default_profile_follows_cuda(monkeypatch):
    monkeypatch.delenv("I2I_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.profile() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.profile() == "gpu"


def test_every_profile_must_be_declared(monkeypatch):
    monkeypatch.setenv("I2I_PROFILE", "cpu")
    with pytest.raises(TypeError, match="gpu"):
        runtime.settings(smoke=dict(size=8), cpu=dict(size=64), full=dict(size=256))


@pytest.mark.parametrize("name, size", [("smoke", 8), ("cpu", 64), ("gpu", 128), ("full", 256)])
def test_each_profile_gets_its_own_values(monkeypatch, name, size):
    monkeypatch.setenv("I2I_PROFILE", name)
    P = runtime.settings(smoke=dict(size=8), cpu=dict(size=64), gpu=dict(size=128), full=dict(size=256))
    assert (P.profile, P.size) == (name, size)


def test_keep_on_drive_refuses_outside_colab(monkeypatch):
    monkeypatch.delenv("I2I_CHECKPOINTS", raising=False)
    with pytest.raises(RuntimeError, match="Colab only"):
        runtime.keep_on_drive()
    assert "I2I_CHECKPOINTS" not in __import__("os").environ


def test_settings_pick_the_active_profile(monkeypatch):
    monkeypatch.setenv("I2I_PROFILE", "cpu")
    P = runtime.settings(smoke=dict(size=8, steps=2), cpu=dict(size=64, steps=300),
                         gpu=dict(size=128, steps=3000), full=dict(size=256, steps=10_000))
    assert (P.profile, P.size, P.steps) == ("cpu", 64, 300)


def test_settings_refuse_a_forgotten_key(monkeypatch):
    monkeypatch.setenv("I2I_PROFILE", "cpu")
    with pytest.raises(ValueError, match="smoke.*steps"):
        runtime.settings(smoke=dict(size=8), cpu=dict(size=64, steps=3), gpu=dict(size=64, steps=3),
                         full=dict(size=256, steps=4))


def test_settings_take_single_values_from_the_environment(monkeypatch):
    monkeypatch.setenv("I2I_PROFILE", "full")
    monkeypatch.setenv("I2I_SETTINGS", "steps=20_000; train=('CBSD68', 'skimage') ;")
    P = runtime.settings(smoke=dict(steps=2, train=()), cpu=dict(steps=3, train=()),
                         gpu=dict(steps=5_000, train=("BSDS500",)), full=dict(steps=10_000, train=("BSDS500",)))
    assert (P.steps, P.train) == (20_000, ("CBSD68", "skimage"))
    assert "steps=20000" in runtime.describe()


@pytest.mark.parametrize("text, message", [("stepz=3", "not a setting"), ("steps", "key=value"),
                                           ("steps=lots", "not a Python literal")])
def test_settings_refuse_a_bad_override(monkeypatch, text, message):
    monkeypatch.setenv("I2I_SETTINGS", text)
    with pytest.raises(ValueError, match=message):
        runtime.settings(smoke=dict(steps=2), cpu=dict(steps=3), gpu=dict(steps=4), full=dict(steps=5))


@pytest.mark.parametrize("text", ["train='CBSD68'", "steps=2.5", "steps=None", "lr=True"])
def test_settings_refuse_a_value_of_another_type(monkeypatch, text):
    # A string where the profiles use a tuple would be iterated letter by letter.
    monkeypatch.setenv("I2I_PROFILE", "cpu")
    monkeypatch.setenv("I2I_SETTINGS", text)
    with pytest.raises(ValueError, match="the profiles set"):
        runtime.settings(smoke=dict(steps=2, train=(), lr=1e-3, fid=None), cpu=dict(steps=3, train=("a",), lr=0.1, fid=None),
                         gpu=dict(steps=4, train=("b",), lr=0.2, fid="imagenet"),
                         full=dict(steps=4, train=("b",), lr=0.2, fid="imagenet"))


@pytest.mark.parametrize("text, key, value", [("lr=1", "lr", 1), ("fid=None", "fid", None),
                                              ("fid='inception'", "fid", "inception"), ("train=()", "train", ())])
def test_settings_accept_the_profiles_types(monkeypatch, text, key, value):
    monkeypatch.setenv("I2I_PROFILE", "cpu")
    monkeypatch.setenv("I2I_SETTINGS", text)
    P = runtime.settings(smoke=dict(train=(), lr=1e-3, fid=None), cpu=dict(train=("a",), lr=0.1, fid=None),
                         gpu=dict(train=("b",), lr=0.2, fid="imagenet"), full=dict(train=("b",), lr=0.2, fid="imagenet"))
    assert getattr(P, key) == value



@pytest.mark.parametrize("text, message", [
    ("lr=" + "-" * 5_000 + "1e-3", "characters, more than the 2000 allowed"),   # the parser overflowed here
    ("lr=" + "-" * 1_900 + "1e-3", "nests deeper than 16 levels"),
    ("lr=" + "(" * 17 + "1" + ",)" * 17, "nests deeper than 16 levels"),
    ("lr=1e999", r"not a finite number \(inf\)"),
    ("lr=-1e999", "not a finite number"),
    ("lr=(1e-3, 1e999j)", "not a finite number"),
])
def test_settings_refuse_hostile_or_non_finite_values(monkeypatch, text, message):
    monkeypatch.setenv("I2I_PROFILE", "cpu")
    monkeypatch.setenv("I2I_SETTINGS", text)
    with pytest.raises(ValueError, match=message):   # a ValueError, never RecursionError or MemoryError
        runtime.settings(smoke=dict(lr=1e-3), cpu=dict(lr=1e-3), gpu=dict(lr=1e-3), full=dict(lr=1e-3))


def test_settings_limits_leave_ordinary_values_alone(monkeypatch):
    monkeypatch.setenv("I2I_SETTINGS", "lr=-1e-3; train=((('a',),),); steps=" + "9" * 1_000)
    found = runtime.overrides()
    assert found["lr"] == -1e-3 and found["train"] == ((("a",),),) and found["steps"] == int("9" * 1_000)

def test_device_override(monkeypatch):
    monkeypatch.setenv("I2I_DEVICE", "cpu")
    assert runtime.device() == torch.device("cpu")
    monkeypatch.delenv("I2I_DEVICE")
    assert runtime.device("cpu").type == "cpu"


def test_seed_everything_repeats_every_generator():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    runtime.seed_everything(7)
    a = draw()
    runtime.seed_everything(7)
    b = draw()
    runtime.seed_everything(8)
    c = draw()
    assert a == b
    assert all(x != y for x, y in zip(a, c))


def test_describe_names_profile_and_device(monkeypatch):
    monkeypatch.setenv("I2I_PROFILE", "smoke")
    monkeypatch.setenv("I2I_DEVICE", "cpu")
    assert runtime.describe().startswith("profile: smoke | device: cpu")


def test_checkpoint_path_separates_profiles(monkeypatch, tmp_path):
    monkeypatch.setenv("I2I_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("I2I_PROFILE", "smoke")
    smoke = runtime.checkpoint_path("03_srcnn", "mse")
    monkeypatch.setenv("I2I_PROFILE", "cpu")
    cpu = runtime.checkpoint_path("03_srcnn", "mse")
    assert smoke == tmp_path / "smoke" / "03_srcnn" / "mse.pt"
    assert cpu != smoke and cpu.name == "mse.pt"
