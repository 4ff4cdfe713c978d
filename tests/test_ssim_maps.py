"""Chapter 01: Waterloo distortion levels, the quality-map dataset, the eight models, the recipe, the checks."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2icourse import analysis, checks, distortions, inference, images, metrics
from i2icourse.data import quality_maps
from i2icourse.data.photos import skimage_photos
from i2icourse.models import ssim_map_nets
from i2icourse.models.layers import count_parameters
from i2icourse.recipes import ssim_maps


@pytest.fixture(scope="module")
def photos():
    return skimage_photos(["astronaut", "coffee", "chelsea"], size=160, mode="rgb")


@pytest.fixture(scope="module")
def astronaut():
    # a real photo at its own size (512 x 512): on tiny images JPEG 2000's lowest rates hit the header floor
    return skimage_photos(["astronaut"], mode="rgb")["astronaut"]


# ---------------------------------------------------------------------------------------------- distortions

def test_levels_are_the_databases():
    assert distortions.WATERLOO_TYPES == ("blur", "noise", "jpeg", "jpeg2000")
    assert distortions.WATERLOO_LEVELS["blur"] == (7, 15, 39, 91, 199)
    assert distortions.WATERLOO_LEVELS["jpeg"] == (43, 12, 7, 4, 0)
    assert np.allclose(np.log2(distortions.WATERLOO_LEVELS["noise"]), [-10, -7.5, -5.5, -3.5, 0])


@pytest.mark.parametrize("kind", distortions.WATERLOO_TYPES)
def test_distortions_are_deterministic_and_ssim_falls_with_level(astronaut, kind):
    x = astronaut
    scores = []
    for level in range(1, 6):
        a = distortions.waterloo_distort(x, kind, level, seed=7)
        b = distortions.waterloo_distort(x, kind, level, seed=7)
        assert torch.equal(a, b) and a.shape == x.shape
        scores.append(float(metrics.ssim(images.rgb_to_grey(a), images.rgb_to_grey(x))))
    assert all(s2 < s1 for s1, s2 in zip(scores, scores[1:])), (kind, scores)
    assert scores[0] < 0.999
    assert torch.equal(distortions.waterloo_distort(x, kind, 0), x)


def test_noise_seed_matters_and_jpeg_quality_zero_is_one(photos):
    x = photos["coffee"]
    assert not torch.equal(distortions.waterloo_distort(x, "noise", 3, seed=1),
                           distortions.waterloo_distort(x, "noise", 3, seed=2))
    assert torch.equal(distortions.waterloo_distort(x, "jpeg", 5), distortions.jpeg(x, 1))


def test_jpeg2000_hits_the_bit_rate(astronaut):
    import io as bio
    from PIL import Image
    x = astronaut
    a = (images.to_numpy(x) * 255 + 0.5).astype(np.uint8)
    for bpp in (0.46, 0.07):
        buf = bio.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG2000", quality_mode="rates", quality_layers=[24 / bpp],
                                irreversible=True)
        got = len(buf.getvalue()) * 8 / (a.shape[0] * a.shape[1])
        assert abs(got - bpp) / bpp < 0.02, (bpp, got)


def test_unknown_kind_or_level():
    with pytest.raises(ValueError):
        distortions.waterloo_distort(torch.rand(3, 32, 32), "fog", 1)
    with pytest.raises(ValueError):
        distortions.waterloo_distort(torch.rand(3, 32, 32), "blur", 6)


# ---------------------------------------------------------------------------------------------- dataset

def test_split_by_image_never_shares_a_photo():
    names = [f"p{i}" for i in range(50)]
    train, val = quality_maps.split_by_image(names, valid=0.2, seed=3)
    assert len(val) == 10 and len(train) == 40 and not set(train) & set(val)
    assert set(train) | set(val) == set(names)
    assert quality_maps.split_by_image(names, valid=0.2, seed=3) == (train, val)
    assert quality_maps.split_by_image(names, valid=10, seed=4) != (train, val)
    with pytest.raises(ValueError):
        quality_maps.split_by_image(names, valid=0)


@pytest.fixture(scope="module")
def pairs(photos, tmp_path_factory):
    small = {k: images.resize(v, size=96) for k, v in photos.items()}
    cache = tmp_path_factory.mktemp("qm")
    p = quality_maps.build_pairs(small, keep=64, seed=0, cache=cache, progress=False)
    again = quality_maps.build_pairs(small, keep=64, seed=0, cache=cache, progress=False)   # from the cache
    assert torch.equal(p.maps, again.maps) and p.kind == again.kind
    return p


def test_pairs_hold_21_versions_per_photo_and_true_maps(pairs, photos):
    assert len(pairs) == 3 * 21 and pairs.images.shape == (63, 3, 64, 64) and pairs.maps.shape == (63, 1, 64, 64)
    assert pairs.images.dtype == torch.uint8
    i = pairs.kind.index("pristine")
    assert float(pairs.map(i).min()) == 1.0
    assert 0.0 <= float(pairs.maps.float().min()) and float(pairs.maps.float().max()) <= 1.0
    # a map is the centre of the SSIM map of the whole distorted photo
    j = next(k for k in range(len(pairs)) if pairs.kind[k] == "blur" and pairs.level[k] == 2)
    x = images.resize(photos[pairs.photo[j]], size=96)
    x = images.from_numpy((images.to_numpy(x) * 255 + 0.5).astype(np.uint8))
    full = quality_maps.ssim_target(distortions.waterloo_distort(x, "blur", 2), x)
    assert torch.allclose(images.center_crop(full, 64), pairs.map(j), atol=2e-3)


def test_dataset_is_balanced(pairs):
    ds = quality_maps.QualityMapPairs(pairs, patch=32)
    assert len(ds) == 3 * 25
    kinds = [pairs.kind[i] for i in ds.index]
    assert all(kinds.count(k) == 15 for k in quality_maps.CLASSES)


def test_patches_of_image_and_map_are_aligned(pairs):
    # replace the maps by the grey images themselves: an aligned crop keeps map == grey(image)
    fake = quality_maps.Pairs(pairs.images, images.rgb_to_grey(pairs.images.float() / 255).half(), pairs.photo, pairs.kind,
                   pairs.level)
    torch.manual_seed(0)
    for train in (True, False):
        ds = quality_maps.QualityMapPairs(fake, patch=24, train=train)
        for j in range(0, len(ds), 7):
            s = ds[j]
            assert s["A"].shape == (3, 24, 24) and s["B"].shape == (1, 24, 24)
            assert torch.allclose(images.rgb_to_grey(s["A"]), s["B"].float(), atol=2e-3)
    ds = quality_maps.QualityMapPairs(pairs, patch=24, train=False)
    assert torch.equal(ds[5]["A"], ds[5]["A"])


def test_subset_keeps_whole_photos(pairs):
    sub = pairs.subset(["coffee"])
    assert len(sub) == 21 and set(sub.photo) == {"coffee"}


# ---------------------------------------------------------------------------------------------- models

SMALL = {"fcn": dict(width=4, fc=16), "dcnn": dict(aspp=16), "unet": dict(base=4), "unet32": dict(base=4),
         "densenet121_unet": dict(decoder=(16, 8, 8, 8, 8)), "resnet18_unet": dict(decoder=(16, 8, 8, 8, 8)),
         "resnet50_unet": dict(decoder=(16, 8, 8, 8, 8)), "gan": dict(depth=6, ngf=4)}


@pytest.mark.parametrize("name", list(ssim_map_nets.MODELS))
def test_every_model_maps_images_to_maps(name):
    torch.manual_seed(0)
    model = ssim_map_nets.build(name, **SMALL[name]).eval()
    for side in (64, 128):
        with torch.no_grad():
            y = model(torch.rand(2, 3, side, side))
        assert y.shape == (2, 1, side, side)
        assert float(y.min()) >= 0 and float(y.max()) <= 1


def test_full_size_parameter_counts_match_the_paper_where_the_architecture_is_known():
    # the torchvision-encoder U-Nets rebuild the paper's (segmentation_models) networks exactly
    for name, paper in [("resnet18_unet", "Resnet18-unet"), ("densenet121_unet", "Densenet121-unet")]:
        assert count_parameters(ssim_map_nets.build(name)) == ssim_maps.PAPER_TABLE_I[paper][1]


def test_builder_rejects_unknown_names_and_bad_sizes():
    with pytest.raises(ValueError):
        ssim_map_nets.build("vit")
    with pytest.raises(ValueError):
        ssim_map_nets.build("unet", base=4)(torch.rand(1, 3, 60, 60))


# ---------------------------------------------------------------------------------------------- recipe

def test_regressor_learns_a_fixed_batch():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32)
    batch = {"A": x, "B": images.rgb_to_grey(x)}
    reg = ssim_maps.MapRegressor(ssim_map_nets.build("unet", base=4), lr=3e-3, halve_every=50)
    first = reg.step(batch)["mae"]
    for s in range(60):
        last = reg.step(batch, s)["mae"]
    assert last < 0.7 * first
    assert reg.opt.param_groups[0]["lr"] == pytest.approx(1.5e-3)


def test_gan_step_runs_and_predict_maps_reports_per_version(pairs):
    torch.manual_seed(0)
    g = ssim_map_nets.build("gan", depth=5, ngf=4)
    gan = ssim_maps.map_gan(g, n_layers=1, ndf=4)
    ds = quality_maps.QualityMapPairs(pairs, patch=32)
    batch = {"A": torch.stack([ds[i]["A"] for i in range(4)]), "B": torch.stack([ds[i]["B"] for i in range(4)])}
    out = gan.step(batch)
    assert {"D", "G_GAN", "G_L1"} <= set(out)
    rows, maps = ssim_maps.predict_maps(g, quality_maps.QualityMapPairs(pairs, patch=32, train=False), keep_maps=True)
    assert len(rows) == 63 and maps.shape == (63, 1, 32, 32)
    assert 0 <= ssim_maps.balanced_mae(rows) <= 1


def test_tiled_prediction_stitches_tiles_back_in_place():
    class Mean(torch.nn.Module):   # a "model" whose output depends on the whole tile: its mean
        def forward(self, x):
            return x[:, :1].mean((2, 3), keepdim=True).expand(-1, 1, *x.shape[-2:])
    x = torch.rand(2, 3, 8, 12)
    p = ssim_maps.predict_tiled(Mean(), x, 4, overlap=0)
    assert p.shape == (2, 1, 8, 12)
    assert torch.allclose(p[1, 0, 4:8, 8:12], x[1, 0, 4:8, 8:12].mean().expand(4, 4))
    assert torch.allclose(p[0, 0, 0:4, 4:8], x[0, 0, 0:4, 4:8].mean().expand(4, 4))
    blended = ssim_maps.predict_tiled(Mean(), x, 4)          # a quarter-tile overlap: neighbouring means mix
    assert blended.shape == (2, 1, 8, 12) and not torch.allclose(blended, p)


def test_tiled_prediction_of_a_pointwise_model_is_the_whole_image_prediction():
    model = torch.nn.Conv2d(3, 1, 1)
    x = torch.rand(2, 3, 10, 13)                     # not multiples of the tile
    whole = inference.predict(model, x)
    for overlap in (0, 2, None):
        assert torch.allclose(ssim_maps.predict_tiled(model, x, 4, overlap=overlap), whole, atol=1e-6)


def test_baseline_and_correlations():
    maps = torch.stack([torch.full((1, 4, 4), 0.2), torch.ones(1, 4, 4)])
    b = ssim_maps.constant_baseline(maps, torch.tensor([1, 3]))
    assert b["mean"] == pytest.approx(0.8) and b["median"] == pytest.approx(1.0)
    from scipy import stats
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    x[3] = x[5]                                          # a tie
    assert analysis.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])
    assert analysis.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])
    assert np.array_equal(analysis.rankdata([3, 1, 3, 2]), stats.rankdata([3, 1, 3, 2]))


# ---------------------------------------------------------------------------------------------- checks

def sol_ssim_map(x, y, data_range=1.0):
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    g = metrics.gaussian_window(11, 1.5)
    w = torch.outer(g, g).view(1, 1, 11, 11)
    blur = lambda t: F.conv2d(t.unsqueeze(0), w, padding=5)[0]  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    return (2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))


def sol_impulse(x, level, seed=0):
    if level == 0:
        return x.clone()
    amount = (0.01, 0.03, 0.08, 0.15, 0.3)[level - 1]
    return distortions.salt_and_pepper(x, amount, torch.Generator().manual_seed(seed))


def sol_unet_params(levels, base):
    def conv_bn(cin, cout):
        return 9 * cin * cout + 2 * cout
    widths = [base * 2 ** i for i in range(levels)]
    total, cin = 0, 3
    for w in widths:
        total += conv_bn(cin, w) + conv_bn(w, w)
        cin = w
    for w in reversed(widths[:-1]):
        total += 4 * cin * w + w
        total += conv_bn(2 * w, w) + conv_bn(w, w)
        cin = w
    return total + cin + 1


def stub(*args, **kwargs):
    raise NotImplementedError("ex-01: stub")


@pytest.mark.parametrize("label, answer", [("ex-01-1", sol_ssim_map), ("ex-01-2", sol_impulse),
                                           ("ex-01-3", sol_unet_params)])
def test_solutions_pass_and_stubs_raise(label, answer, capsys):
    assert checks.passes(label, answer)
    with pytest.raises(NotImplementedError):
        checks.passes(label, stub)


def wrong_constants(x, y):
    return sol_ssim_map(x, y) * 0.98 + 0.02


def unseeded(x, level, seed=0):
    return x.clone() if level == 0 else distortions.salt_and_pepper(x, 0.05 * level)


def no_batchnorm(levels, base):
    return sol_unet_params(levels, base) - 10


@pytest.mark.parametrize("label, answer", [("ex-01-1", wrong_constants), ("ex-01-2", unseeded),
                                           ("ex-01-3", no_batchnorm)])
def test_typical_wrong_answers_fail(label, answer, capsys):
    assert not checks.passes(label, answer)
