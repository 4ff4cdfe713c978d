"""Chapter 2: the autoencoder, the equal-weight MS-SSIM loss on small images, the ranking tally, the
probes, the chapter's datasets and the exercise checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from i2icourse import analysis, checks, losses, metrics, plot, runtime, train
from i2icourse.data import autoencoding as ae
from i2icourse.analysis import bottleneck_features
from i2icourse.models.autoencoder import ConvAutoencoder
from i2icourse.recipes import autoencoders as rec


def _photo(side: int, seed: int = 0) -> torch.Tensor:
    """A smooth random grey image (1, 1, side, side) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, side // 4, side // 4, generator=g)
    return torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------------------------------
# The loss
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("side", [96, 48])
@pytest.mark.parametrize("weights", ["equal", "standard"])
def test_ms_ssim_loss_zero_for_identical_images(side, weights):
    x = _photo(side)
    assert float(losses.ms_ssim_loss(x.clone(), x, weights=weights)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("side", [96, 48])
def test_equal_weight_loss_gradient_finite(side):
    x = _photo(side, 1)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1).requires_grad_()
    loss = losses.get_loss("log_ms_ssim")(y, x)
    loss.backward()
    assert 0 < float(loss.detach()) < 1
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_equal_weight_losses_match_the_metric():
    x, y = _photo(96, 2), _photo(96, 3)
    equal = float(metrics.ms_ssim(y, x, weights="equal"))
    standard = float(metrics.ms_ssim(y, x))
    assert float(losses.paper_ms_ssim_loss(y, x)) == pytest.approx(1 - equal, abs=1e-6)
    assert float(losses.get_loss("log_ms_ssim")(y, x)) == pytest.approx(-np.log(equal), rel=1e-5)
    assert equal < standard  # five terms below 1 multiplied with exponent 1: a harsher score


@pytest.mark.parametrize("side", [96, 48])
def test_log_loss_zero_for_identical_and_finite_gradient(side):
    x = _photo(side, 4)
    assert float(losses.log_ms_ssim_loss(x.clone(), x)) == pytest.approx(0.0, abs=1e-6)
    y = torch.full_like(x, 0.5).requires_grad_()      # a flat start: the hardest case for the product
    losses.log_ms_ssim_loss(y, x).backward()
    assert torch.isfinite(y.grad).all()


def test_the_chapters_loss_names_come_from_the_one_registry():
    assert losses.get_loss("MSE") is losses.l2 and losses.get_loss("MAE") is losses.l1
    assert losses.get_loss("log_ms_ssim") is losses.log_ms_ssim_loss
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get_loss("SSIM-log")


# ----------------------------------------------------------------------------------------------
# The autoencoder
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,channels", [(96, (8, 8, 16, 16)), (48, (8, 16, 16))])
@pytest.mark.parametrize("bottleneck", [16, 128])
def test_autoencoder_round_trips_shapes(size, channels, bottleneck):
    net = ConvAutoencoder(size, bottleneck, channels)
    x = torch.rand(3, 1, size, size)
    with torch.no_grad():
        z = net.encode(x)
        y = net(x)
    assert z.shape == (3, bottleneck)
    assert y.shape == x.shape
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    with torch.no_grad():
        assert net.decode(z).shape == x.shape


def test_autoencoder_rejects_bad_sizes():
    with pytest.raises(ValueError, match="divisible"):
        ConvAutoencoder(100, 8, (8, 8, 8))
    net = ConvAutoencoder(48, 8, (8, 8))
    with pytest.raises(ValueError, match="expected"):
        net(torch.rand(2, 1, 96, 96))


def test_bottleneck_features_eval_mode_and_restored():
    net = ConvAutoencoder(48, 12, (8, 8))
    net.train()
    x = torch.rand(5, 1, 48, 48)
    f = bottleneck_features(net, x, batch_size=2)
    assert f.shape == (5, 12)
    assert net.training
    net.eval()
    assert torch.allclose(f, net.encode(x), atol=1e-6)
    assert bottleneck_features(net, x[:0]).shape == (0, 12)   # no images: no codes, the right width


def test_training_step_lowers_the_loss():
    torch.manual_seed(0)
    trainer = rec.Reconstruction(ConvAutoencoder(48, 16, (8, 16)), losses.get_loss("mse"), lr=3e-3)
    x = torch.cat([_photo(48, s) for s in range(4)])
    before = [t.clone() for t in trainer.model.state_dict().values()]
    first = trainer.step(x, 0)["loss"]
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.state_dict().values()))
    for i in range(40):
        last = trainer.step(x, i + 1)["loss"]
    assert last < first
    r = rec.reconstruct(trainer.model, x)
    assert r.shape == x.shape and trainer.model.training
    table = rec.quality_table(x, {"MSE": r})
    assert set(table["MSE"]) == {"PSNR", "SSIM", "MS-SSIM"}


AE_STEPS = 6


def _crops() -> torch.Tensor:
    return torch.cat([_photo(48, s) for s in range(8)])


def _new_reconstruction(loss: str = "log_ms_ssim") -> rec.Reconstruction:
    runtime.seed_everything(0)
    return rec.Reconstruction(ConvAutoencoder(48, 16, (8, 16)), losses.get_loss(loss), lr=2e-3)


def _fit(trainer: rec.Reconstruction, steps: int, checkpoint=None) -> train.History:
    return train.fit(trainer.step, _crops(), steps=steps, batch_size=4, objects=trainer.objects(),
                     checkpoint=checkpoint, checkpoint_every=2, seed=0, progress=False)


def _closure_run(steps: int, checkpoint=None):
    """Chapter 2's training as it was written before the recipe class: a closure over model, loss and Adam."""
    runtime.seed_everything(0)
    net = ConvAutoencoder(48, 16, (8, 16))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = losses.get_loss("log_ms_ssim")

    def step(batch, i):
        net.train()
        x = batch.to("cpu")
        loss = loss_fn(net(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach())}

    history = train.fit(step, _crops(), steps=steps, batch_size=4, objects={"net": net, "opt": opt},
                        checkpoint=checkpoint, seed=0, progress=False)
    return net, history


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_reconstruction_trains_exactly_as_the_old_closure():
    old, old_history = _closure_run(AE_STEPS)
    trainer = _new_reconstruction()
    history = _fit(trainer, AE_STEPS)
    assert _same_weights(old, trainer.model)
    assert history.values("loss") == old_history.values("loss")


def test_reconstruction_resumes_exactly_and_keeps_the_chapters_checkpoint_names(tmp_path):
    assert list(_new_reconstruction().objects()) == ["net", "opt"]
    straight = _new_reconstruction("mse")
    _fit(straight, AE_STEPS)
    _fit(_new_reconstruction("mse"), AE_STEPS // 2, tmp_path / "ae.pt")
    torch.manual_seed(99)  # an interruption scrambles the global RNG; the checkpoint restores it
    resumed = _new_reconstruction("mse")
    _fit(resumed, AE_STEPS, tmp_path / "ae.pt")
    assert _same_weights(straight.model, resumed.model)


def test_a_checkpoint_of_the_old_closure_loads_into_reconstruction(tmp_path):
    old, _ = _closure_run(AE_STEPS, tmp_path / "ae_MS-SSIM.pt")
    trainer = _new_reconstruction()
    trainer.step = lambda batch, i: pytest.fail("a complete checkpoint must be loaded, not trained on")
    _fit(trainer, AE_STEPS, tmp_path / "ae_MS-SSIM.pt")
    assert _same_weights(old, trainer.model)


# ----------------------------------------------------------------------------------------------
# The ranking tally
# ----------------------------------------------------------------------------------------------

def test_ranking_tally_counts():
    t = analysis.RankingTally(["MSE", "MAE", "MS-SSIM"])
    t.add(["MS-SSIM", "MSE", "MAE"])
    t.add(["MS-SSIM", "MAE", "MSE"])
    t.add(["MSE", "MS-SSIM", "MAE"])
    assert len(t) == 3
    assert t.counts == {"MSE": [1, 1, 1], "MAE": [0, 1, 2], "MS-SSIM": [2, 1, 0]}
    assert t.firsts() == {"MSE": 1, "MAE": 0, "MS-SSIM": 2}
    assert t.mean_rank() == {"MSE": 2.0, "MAE": pytest.approx(8 / 3), "MS-SSIM": pytest.approx(4 / 3)}
    assert t.table()["MAE"] == {"1st": 0, "2nd": 1, "3rd": 2}
    # every place sums to the number of rankings
    for place in range(3):
        assert sum(c[place] for c in t.counts.values()) == 3


def test_ranking_tally_rejects_bad_rankings():
    t = analysis.RankingTally(["a", "b", "c"])
    for bad in (["a", "b"], ["a", "a", "b"], ["a", "b", "d"]):
        with pytest.raises(ValueError, match="exactly once"):
            t.add(bad)
    assert len(t) == 0
    with pytest.raises(ValueError, match="distinct"):
        analysis.RankingTally(["a", "a"])


def test_rank_by_score_and_helpers():
    assert analysis.rank_by_score({"a": 0.5, "b": 0.9, "c": 0.7}) == ["b", "c", "a"]
    assert analysis.rank_by_score({"a": 0.5, "b": 0.9, "c": 0.7}, higher_is_better=False) == ["a", "c", "b"]
    assert analysis.rank_by_score({"a": 1.0, "b": 1.0}) == ["a", "b"]
    assert [analysis.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd"]
    names = ["MSE", "MAE", "MS-SSIM"]
    assert sorted(analysis.shuffled(names, 3)) == sorted(names)
    assert analysis.shuffled(names, 3) == analysis.shuffled(names, 3)


def test_plot_tally():
    t = analysis.RankingTally(["MSE", "MAE", "MS-SSIM"])
    t.add(["MS-SSIM", "MSE", "MAE"])
    fig = plot.plot_tally(t, "test")
    assert len(fig.axes[0].patches) == 9


# ----------------------------------------------------------------------------------------------
# Probes
# ----------------------------------------------------------------------------------------------

def test_logistic_probe_separable_and_random():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(120, 5, generator=g)
    y = (x[:, 0] > 0).long()
    out = analysis.logistic_probe(x[:80], y[:80], x[80:], y[80:])
    assert out["error"] <= 5.0
    noise = torch.randn(120, 5, generator=g)
    out = analysis.logistic_probe(noise[:80], y[:80], noise[80:], y[80:], l2_grid=(1.0,))
    assert out["error"] > 20.0


def test_ridge_probe_recovers_a_linear_target():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 4, generator=g)
    y = 3 * x[:, 1] - 2 * x[:, 2] + 5 + 0.1 * torch.randn(200, generator=g)
    out = analysis.ridge_probe(x[:150], y[:150], x[150:], y[150:])
    assert out["mse"] < 0.05
    assert out["lam"] in (0.1, 1.0, 10.0, 100.0, 1000.0)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def test_random_crops_and_grid_crops():
    images = [torch.rand(1, 120, 150), torch.rand(1, 100, 100)]
    ds = ae.RandomCrops(images, 96, length=7)
    assert len(ds) == 7 and ds[3].shape == (1, 96, 96)
    with pytest.raises(ValueError, match="at least"):
        ae.RandomCrops([torch.rand(1, 50, 200)], 96)
    crops = ae.grid_crops([torch.rand(1, 200, 300), torch.rand(1, 96, 96)], 96, per_image=4)
    assert crops.shape == (5, 1, 96, 96)  # 2x3 cells -> 4 picked, plus 1


def test_stratified_split():
    labels = torch.tensor([0] * 10 + [1] * 20)
    train, test = ae.stratified_split(labels, 0.3, seed=0)
    assert len(set(train.tolist()) & set(test.tolist())) == 0
    assert len(train) + len(test) == 30
    assert int((labels[test] == 0).sum()) == 3 and int((labels[test] == 1).sum()) == 6


def test_lfw_probe():
    probe = ae.lfw_probe(48)
    assert probe.images.shape == (200, 1, 48, 48)
    assert probe.kinds == {"face": "class"}
    assert int(probe.targets["face"].sum()) == 100
    sub = probe.subset([0, 150])
    assert sub.targets["face"].tolist() == [1, 0]


def test_stl10_grey_reads_column_major_binary(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(3, 3, 96, 96), dtype=np.uint8)  # (N, C, H, W)
    rgb.transpose(0, 1, 3, 2).tofile(tmp_path / "train_X.bin")  # STL-10 stores each channel transposed
    ds = ae.STL10Grey("train", folder=tmp_path)
    assert len(ds) == 3
    x = ds[1]
    want = (0.299 * rgb[1, 0] + 0.587 * rgb[1, 1] + 0.114 * rgb[1, 2]) / 255
    assert x.shape == (1, 96, 96)
    assert np.allclose(x[0].numpy(), want, atol=1e-5)
    assert ds.stack(2).shape == (2, 1, 96, 96)
    sub = ae.STL10Grey("train", folder=tmp_path, indices=[2])
    assert torch.equal(sub[0], ds[2])


def test_yale_b_parses_names(tmp_path):
    for person, az, el in [("01", "+035", "+15"), ("01", "-010", "-20"), ("02", "+000", "+00")]:
        folder = tmp_path / f"yaleB{person}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(np.full((192, 168), 100, np.uint8)).save(folder / f"yaleB{person}_P00A{az}E{el}.pgm")
    Image.fromarray(np.zeros((192, 168), np.uint8)).save(tmp_path / "yaleB01" / "yaleB01_P00_Ambient.pgm")
    probe = ae.yale_b(48, folder=tmp_path)
    assert probe.images.shape == (3, 1, 48, 48)
    assert probe.targets["identity"].tolist() == [0, 0, 1]
    assert sorted(probe.targets["azimuth"].tolist()) == [-10.0, 0.0, 35.0]
    assert probe.kinds["azimuth"] == "regress"


def test_judge_widget_submits_into_the_tally():
    pytest.importorskip("ipywidgets")
    x = torch.rand(2, 1, 48, 48)
    recs = {"MSE": x * 0.9, "MAE": x * 0.8, "MS-SSIM": x * 0.7}
    tally = analysis.RankingTally(recs)
    panel = plot.judge_widget(x, recs, tally, seed=1)
    order = panel.order()                                # models behind A, B, C
    wanted = ["MS-SSIM", "MSE", "MAE"]                   # the judge's ranking, best first
    for place, model in zip(panel.places, wanted):
        place.value = "ABC"[order.index(model)]
    panel.submit()
    assert tally.counts == {"MSE": [0, 1, 0], "MAE": [0, 0, 1], "MS-SSIM": [1, 0, 0]}
    for place in panel.places:                           # the same letter twice: refused
        place.value = "A"
    panel.submit()
    assert len(tally) == 1


# ----------------------------------------------------------------------------------------------
# Exercise checks
# ----------------------------------------------------------------------------------------------

def _windows_solution(side, scales=5, win_size=11):
    sizes = []
    for _ in range(scales):
        sizes.append(min(win_size, side if side % 2 else side - 1))
        side = (side + 1) // 2
    return sizes


def _windows_floor(side, scales=5, win_size=11):
    sizes = []
    for _ in range(scales):
        sizes.append(min(win_size, side if side % 2 else side - 1))
        side = side // 2
    return sizes


def _mixed_solution(pred, target, alpha=0.84):
    ms = metrics.ms_ssim(pred.clamp(0, 1), target).mean()
    return alpha * (1 - ms) + (1 - alpha) * (pred - target).abs().mean()


def _mixed_swapped(pred, target, alpha=0.84):
    ms = metrics.ms_ssim(pred.clamp(0, 1), target).mean()
    return (1 - alpha) * (1 - ms) + alpha * (pred - target).abs().mean()


def _stub(*args, **kwargs):
    raise NotImplementedError("ex-02-x: stub")


@pytest.mark.parametrize("label,solution,wrong,hint", [
    ("ex-02-1", _windows_solution, _windows_floor, "ceil_mode"),
    ("ex-02-2", _mixed_solution, _mixed_swapped, "alpha weighs"),
])
def test_checks_chapter_02(label, solution, wrong, hint, exercise_check):
    exercise_check(label, solution, _stub, wrong, hint)


def test_check_mixed_loss_catches_equal_weights(capsys):
    def equal(pred, target, alpha=0.84):
        ms = metrics.ms_ssim(pred.clamp(0, 1), target, weights="equal").mean()
        return alpha * (1 - ms) + (1 - alpha) * (pred - target).abs().mean()
    assert not checks.passes("ex-02-2", equal)
    assert "standard MS-SSIM exponents" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- PCA

def test_pca_is_exact_on_images_of_a_k_dimensional_subspace_and_orthonormal():
    g = torch.Generator().manual_seed(0)
    basis, mean = torch.randn(3, 1 * 8 * 8, generator=g), torch.full((64,), 0.5)
    images = (0.05 * torch.randn(20, 3, generator=g) @ basis + mean).clamp(0, 1).view(20, 1, 8, 8)
    for flat in (images, torch.cat([images] * 4)):          # N < D (the Gram matrix) and N > D (the covariance)
        pca = analysis.fit_pca(flat, 3)
        W = pca.components
        assert W.shape == (64, 3) and torch.allclose(W.T @ W, torch.eye(3, dtype=W.dtype), atol=1e-8)
        assert pca.encode(flat).shape == (len(flat), 3)
        assert torch.allclose(pca.reconstruct(flat), flat, atol=1e-5)


def test_pca_beats_any_other_linear_code_of_the_same_size():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(40, 1, 6, 6, generator=g) ** 2
    pca = analysis.fit_pca(images, 5)
    err = float((pca.reconstruct(images) - images).pow(2).mean())
    q, _ = torch.linalg.qr(torch.randn(36, 5, generator=g, dtype=torch.float64))   # a random 5-d subspace
    other = analysis.PCA(pca.mean, q, (1, 6, 6))
    assert err < float((other.reconstruct(images) - images).pow(2).mean())
    assert err < float((analysis.fit_pca(images, 2).reconstruct(images) - images).pow(2).mean())
    with pytest.raises(ValueError, match="N > k"):
        analysis.fit_pca(images, 40)
