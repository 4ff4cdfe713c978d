"""i2icourse.metrics against the reference implementations, on real photos with real distortions.

References: skimage (SSIM map and score, PSNR), pytorch-msssim (SSIM score, MS-SSIM on large images),
piq (VIF), and for UQI a NumPy transcription of Wang & Bovik's img_qi.m written here.
"""
from functools import lru_cache
from io import BytesIO

import numpy as np
import piq
import pytest
import pytorch_msssim
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.signal import convolve2d
from skimage import data
from skimage.color import rgb2gray
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from i2icourse import metrics
from i2icourse.images import ImageError

# ----------------------------------------------------------------------------------------------
# Photos and distortions (NumPy float64 in [0, 1], (H, W) or (H, W, 3)); crops keep the tests fast
# ----------------------------------------------------------------------------------------------

PHOTOS = ("camera", "astronaut", "coffee", "coffee_grey")
DISTORTIONS = ("noise", "blur", "jpeg")


@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    if name == "camera":
        a = data.camera()[100:260, 180:372] / 255.0           # the cameraman, 160 x 192
    elif name == "astronaut":
        a = data.astronaut()[30:190, 140:332] / 255.0        # the face, 160 x 192 x 3
    elif name == "coffee":
        a = data.coffee()[120:280, 200:392] / 255.0
    elif name == "coffee_grey":
        a = rgb2gray(data.coffee()[120:280, 200:392])
    else:
        raise KeyError(name)
    return a


@lru_cache(maxsize=None)
def distorted(name: str, how: str) -> np.ndarray:
    a = photo(name)
    if how == "noise":
        rng = np.random.default_rng(0)
        return np.clip(a + rng.normal(0, 20 / 255, a.shape), 0, 1)
    if how == "blur":
        sigma = (2, 2, 0) if a.ndim == 3 else 2
        return gaussian_filter(a, sigma, mode="reflect")
    if how == "jpeg":
        buf = BytesIO()
        Image.fromarray((a * 255 + 0.5).astype(np.uint8)).save(buf, format="JPEG", quality=10)
        return np.asarray(Image.open(buf)).astype(np.float64) / 255
    raise KeyError(how)


def tensor(a: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    """(H,W) or (H,W,C) array -> (C,H,W) tensor."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    t = t[None] if t.dim() == 2 else t.permute(2, 0, 1)
    return t.to(dtype)


def as_array(t: torch.Tensor) -> np.ndarray:
    a = t.detach().double().permute(1, 2, 0).numpy()
    return a[:, :, 0] if a.shape[2] == 1 else a


def skimage_ssim(a: np.ndarray, b: np.ndarray):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=1.0, full=True, channel_axis=2 if a.ndim == 3 else None)


CASES = [(p, d) for p in PHOTOS for d in DISTORTIONS]


# ----------------------------------------------------------------------------------------------
# SSIM
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,how", CASES)
def test_ssim_map_and_score_match_skimage(name, how):
    a, b = photo(name), distorted(name, how)
    ref_score, ref_map = skimage_ssim(a, b)
    score, ssim_map = metrics.ssim(tensor(a), tensor(b), full=True)
    assert ssim_map.shape == tensor(a).shape and score.dim() == 0
    diff = np.abs(as_array(ssim_map) - ref_map)
    assert diff.mean() < 1e-4, f"mean |diff| {diff.mean():.2e}"
    assert diff.max() < 1e-3, f"max |diff| {diff.max():.2e}"
    assert abs(float(score) - ref_score) < 1e-5
    assert float(metrics.ssim(tensor(a), tensor(b))) == pytest.approx(float(score), abs=1e-6)


def test_ssim_in_float64_is_skimage_to_rounding():
    # Catches any difference of method (padding, window, crop), which float32 noise could hide.
    a, b = photo("astronaut"), distorted("astronaut", "jpeg")
    ref_score, ref_map = skimage_ssim(a, b)
    score, ssim_map = metrics.ssim(tensor(a, torch.float64), tensor(b, torch.float64), full=True)
    assert np.abs(as_array(ssim_map) - ref_map).max() < 1e-10
    assert abs(float(score) - ref_score) < 1e-12


def test_ssim_reference_number_camera_with_noise():
    # Measured with both skimage and pytorch-msssim: 0.357821 on the full 512 x 512 camera image.
    rng = np.random.default_rng(0)
    a = data.camera() / 255.0
    b = np.clip(a + rng.normal(0, 20 / 255, a.shape), 0, 1)
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=1.0)
    ours = float(metrics.ssim(tensor(a), tensor(b)))
    assert ours == pytest.approx(ref, abs=1e-5)
    assert ours == pytest.approx(0.3578, abs=2e-3)


def test_symmetric_padding_is_numpy_symmetric_not_torch_reflect():
    x = torch.arange(2 * 12 * 13, dtype=torch.float64).view(1, 2, 12, 13)
    ours = metrics._pad_symmetric(x, 5)
    ref = np.pad(x.numpy(), ((0, 0), (0, 0), (5, 5), (5, 5)), mode="symmetric")
    assert np.array_equal(ours.numpy(), ref)


@pytest.mark.parametrize("how", DISTORTIONS)
def test_ssim_score_matches_pytorch_msssim(how):
    a, b = tensor(photo("astronaut"))[None], tensor(distorted("astronaut", how))[None]
    ref = pytorch_msssim.ssim(a, b, data_range=1.0, size_average=False)
    assert torch.allclose(metrics.ssim(a, b), ref, atol=1e-5)


def test_ssim_scores_each_image_of_a_batch():
    a = torch.stack([tensor(photo("astronaut")), tensor(photo("coffee"))])
    b = torch.stack([tensor(distorted("astronaut", "noise")), tensor(distorted("coffee", "blur"))])
    scores, maps = metrics.ssim(a, b, full=True)
    assert scores.shape == (2,) and maps.shape == a.shape
    for i in range(2):
        assert float(scores[i]) == pytest.approx(float(metrics.ssim(a[i], b[i])), abs=1e-6)
    assert float(metrics.ssim(a[0], a[0])) == pytest.approx(1.0, abs=1e-6)


def test_ssim_components_multiply_to_the_ssim_map():
    a, b = tensor(photo("coffee")), tensor(distorted("coffee", "blur"))
    parts = metrics.ssim_components(a, b)
    assert set(parts) == {"luminance", "contrast", "structure", "ssim"}
    _, ssim_map = metrics.ssim(a, b, full=True)
    product = parts["luminance"] * parts["contrast"] * parts["structure"]
    assert all(p.shape == a.shape for p in parts.values())
    assert torch.allclose(product, ssim_map, atol=1e-4)
    assert torch.allclose(parts["ssim"], ssim_map, atol=1e-6)
    # blurring lowers contrast, hardly luminance
    contrast, luminance = float(parts["contrast"].mean()), float(parts["luminance"].mean())
    assert contrast < 0.95 and luminance > contrast + 0.05


def test_ssim_components_tell_a_negative_apart():
    # 1 - x has the same local contrast as x, the opposite structure (where there is any texture).
    a = tensor(photo("camera"))
    parts = metrics.ssim_components(a, 1 - a)
    assert float(parts["contrast"].min()) > 0.999
    blur = lambda im: gaussian_filter(im, 1.5, truncate=3.5)   # noqa: E731 (the SSIM window)
    local_var = blur(photo("camera") ** 2) - blur(photo("camera")) ** 2
    textured = torch.from_numpy(local_var > 0.05 ** 2)[None]
    assert textured.float().mean() > 0.2
    assert float(parts["structure"][textured].max()) < -0.5     # -0.69 at std 0.05, because of C3
    assert float(parts["structure"][textured].mean()) < -0.9
    same = metrics.ssim_components(a, a)
    for key, m in same.items():
        assert torch.allclose(m, torch.ones_like(m), atol=1e-5), key


# ----------------------------------------------------------------------------------------------
# PSNR
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,how", CASES)
def test_psnr_matches_skimage(name, how):
    a, b = photo(name), distorted(name, how)
    ref = peak_signal_noise_ratio(a, b, data_range=1.0)
    assert float(metrics.psnr(tensor(a), tensor(b))) == pytest.approx(ref, abs=1e-4)


def test_psnr_batch_and_identical_images():
    a = torch.stack([tensor(photo("camera")), tensor(distorted("camera", "noise"))])
    values = metrics.psnr(a, a.flip(0))
    assert values.shape == (2,) and torch.allclose(values[0], values[1])
    assert torch.isinf(metrics.psnr(a[0], a[0]))


# ----------------------------------------------------------------------------------------------
# UQI against img_qi.m, transcribed here line by line
# ----------------------------------------------------------------------------------------------

def img_qi(img1: np.ndarray, img2: np.ndarray, block_size: int = 8):
    """Wang & Bovik's img_qi.m in NumPy (grey images, any scale; exact zero tests as in MATLAB)."""
    N = block_size ** 2
    sum2_filter = np.ones((block_size, block_size))
    filt = lambda a: convolve2d(a, sum2_filter, mode="valid")   # noqa: E731 (filter2 of a symmetric kernel)
    img1_sum, img2_sum = filt(img1), filt(img2)
    img1_sq_sum, img2_sq_sum, img12_sum = filt(img1 * img1), filt(img2 * img2), filt(img1 * img2)
    img12_sum_mul = img1_sum * img2_sum
    img12_sq_sum_mul = img1_sum * img1_sum + img2_sum * img2_sum
    numerator = 4 * (N * img12_sum - img12_sum_mul) * img12_sum_mul
    denominator1 = N * (img1_sq_sum + img2_sq_sum) - img12_sq_sum_mul
    denominator = denominator1 * img12_sq_sum_mul
    quality_map = np.ones(denominator.shape)
    index = (denominator1 == 0) & (img12_sq_sum_mul != 0)
    quality_map[index] = 2 * img12_sum_mul[index] / img12_sq_sum_mul[index]
    index = denominator != 0
    quality_map[index] = numerator[index] / denominator[index]
    return quality_map.mean(), quality_map


def to_uint8(a: np.ndarray) -> np.ndarray:
    return (a * 255 + 0.5).astype(np.uint8)


@pytest.mark.parametrize("name,how", [(p, d) for p in ("camera", "coffee_grey") for d in DISTORTIONS])
def test_uqi_matches_img_qi(name, how):
    # img_qi.m runs on 8-bit grey levels, where its "== 0" tests are exact.
    a, b = to_uint8(photo(name)), to_uint8(distorted(name, how))
    ref_score, ref_map = img_qi(a.astype(np.float64), b.astype(np.float64))
    score, q = metrics.uqi(tensor(a / 255.0), tensor(b / 255.0), full=True)
    assert q.shape == (1, a.shape[0] - 7, a.shape[1] - 7)
    assert np.abs(q[0].double().numpy() - ref_map).max() < 1e-5
    assert float(score) == pytest.approx(ref_score, abs=1e-6)


def test_uqi_flat_and_black_windows_follow_img_qi():
    a = to_uint8(photo("camera")).astype(np.float64)
    b = to_uint8(distorted("camera", "blur")).astype(np.float64)
    a[:40, :40] = b[:40, :40] = 0             # black in both: Q = 1
    a[:40, 60:100], b[:40, 60:100] = 90, 130  # flat in both: Q = 2 mu_x mu_y / (mu_x^2 + mu_y^2)
    a[60:100, :40] = 200                      # flat in one only: Q = 0
    ref_score, ref_map = img_qi(a, b)
    score, q = metrics.uqi(tensor(a / 255), tensor(b / 255), full=True)
    assert ref_map[5, 5] == 1 and ref_map[5, 70] == pytest.approx(2 * 90 * 130 / (90 ** 2 + 130 ** 2))
    assert ref_map[70, 5] == 0
    assert np.abs(q[0].double().numpy() - ref_map).max() < 1e-5
    assert float(score) == pytest.approx(ref_score, abs=1e-6)


def test_uqi_colour_is_the_mean_over_channels():
    a, b = tensor(photo("astronaut")), tensor(distorted("astronaut", "jpeg"))
    per_channel = [float(metrics.uqi(a[c:c + 1], b[c:c + 1])) for c in range(3)]
    assert float(metrics.uqi(a, b)) == pytest.approx(np.mean(per_channel), abs=1e-6)
    assert float(metrics.uqi(a, a)) == pytest.approx(1.0, abs=1e-6)


# ----------------------------------------------------------------------------------------------
# VIF against piq.vif_p (which takes the distorted image first)
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,how", CASES)
def test_vifp_matches_piq(name, how):
    ref_img, dist_img = tensor(photo(name))[None], tensor(distorted(name, how))[None]
    ours = float(metrics.vifp(ref_img, dist_img))
    assert ours == pytest.approx(float(piq.vif_p(dist_img, ref_img)), abs=1e-3)
    # in float64 piq's only difference is its 1e-8 thresholds (ours: the MATLAB code's 1e-10)
    ref64 = float(piq.vif_p(dist_img.double(), ref_img.double()))
    assert ours == pytest.approx(ref64, abs=1e-5)


def test_vifp_is_not_symmetric_and_rewards_contrast():
    x = tensor(photo("camera"))
    y = tensor(distorted("camera", "blur"))
    assert float(metrics.vifp(x, x)) == pytest.approx(1.0, abs=1e-6)
    assert abs(float(metrics.vifp(x, y)) - float(metrics.vifp(y, x))) > 0.05
    # a contrast-enhanced copy holds more than all the information: VIF above 1 (no clipping here)
    assert float(metrics.vifp(0.3 + 0.4 * x, 0.2 + 0.6 * x)) > 1.0
    pair = metrics.vifp(torch.stack([x, x]), torch.stack([x, y]))
    assert pair.shape == (2,) and float(pair[1]) < float(pair[0])


def test_vifp_needs_41_pixels():
    x = torch.rand(1, 40, 64)
    with pytest.raises(ImageError, match="41x41"):
        metrics.vifp(x, x)


# ----------------------------------------------------------------------------------------------
# MS-SSIM
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [176, 256])
@pytest.mark.parametrize("name", ["camera", "astronaut"])
def test_ms_ssim_matches_pytorch_msssim_on_large_images(name, size):
    full = {"camera": data.camera() / 255.0, "astronaut": data.astronaut() / 255.0}[name]
    a = full[100:100 + size, 100:100 + size]
    rng = np.random.default_rng(1)
    b = np.clip(a + rng.normal(0, 15 / 255, a.shape), 0, 1)
    x, y = tensor(a, torch.float64)[None], tensor(b, torch.float64)[None]
    ref = float(pytorch_msssim.ms_ssim(x, y, data_range=1.0))
    # pytorch-msssim's window is normalised in float32 even for float64 input: ~1e-5 error in cs
    assert float(metrics.ms_ssim(x, y)) == pytest.approx(ref, abs=3e-5)
    assert float(metrics.ms_ssim(x.float(), y.float())) == pytest.approx(ref, abs=3e-5)


def test_ms_ssim_with_a_5_window_on_96_pixels_is_pytorch_msssims():
    a, b = photo("astronaut")[:96, :96], distorted("astronaut", "noise")[:96, :96]
    x, y = tensor(a, torch.float64)[None], tensor(b, torch.float64)[None]
    ref = float(pytorch_msssim.ms_ssim(x, y, data_range=1.0, win_size=5))
    assert float(metrics.ms_ssim(x, y, win_size=5)) == pytest.approx(ref, abs=3e-5)
    assert abs(float(metrics.ms_ssim(x, y)) - ref) > 1e-3     # the default (trimmed 11x11) is not that


@pytest.mark.parametrize("size", [33, 96])
def test_ms_ssim_on_small_images(size):
    a = tensor(photo("coffee"))[:, :size, :size]
    assert float(metrics.ms_ssim(a, a)) == pytest.approx(1.0, abs=1e-5)
    rng = torch.Generator().manual_seed(0)
    noise = torch.randn(a.shape, generator=rng)
    scores = [float(metrics.ms_ssim(a, (a + s / 255 * noise).clamp(0, 1))) for s in (5, 10, 20, 40)]
    assert all(s1 > s2 for s1, s2 in zip(scores, scores[1:])), scores
    batch = metrics.ms_ssim(torch.stack([a, a]), torch.stack([a, (a + 0.1 * noise).clamp(0, 1)]))
    assert batch.shape == (2,) and float(batch[1]) < float(batch[0])


def test_ms_ssim_weights():
    a, b = tensor(photo("camera"))[:, :96, :96], tensor(distorted("camera", "jpeg"))[:, :96, :96]
    standard = float(metrics.ms_ssim(a, b))
    equal = float(metrics.ms_ssim(a, b, weights="equal"))
    assert equal == pytest.approx(float(metrics.ms_ssim(a, b, weights=[1] * 5)))
    assert equal < standard     # a product of terms <= 1 is below their weighted geometric mean
    # one scale is plain SSIM
    assert float(metrics.ms_ssim(a, b, weights=[1.0])) == pytest.approx(float(metrics.ssim(a, b)), abs=1e-6)
    with pytest.raises(ValueError, match="weights"):
        metrics.ms_ssim(a, b, weights="heavy")


def test_ms_ssim_is_differentiable_and_finite_for_a_negative():
    a = tensor(photo("camera"))[None, :, :33, :33]
    y = (1 - a).clone().requires_grad_(True)     # anti-correlated: cs < 0 at every scale
    score = metrics.ms_ssim(a, y)
    score.backward()
    assert torch.isfinite(score) and torch.isfinite(y.grad).all()


def test_ms_ssim_size_limit_is_explained():
    x = torch.rand(1, 32, 48)
    with pytest.raises(ImageError, match="33x33"):
        metrics.ms_ssim(x, x)
    assert metrics.ms_ssim(x, x, weights=[0.5, 0.5]).dim() == 0   # fewer scales fit


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------

FUNCTIONS = [metrics.psnr, metrics.ssim, metrics.ssim_components, metrics.ms_ssim, metrics.uqi, metrics.vifp]


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
def test_bad_inputs_are_named(fn):
    x = tensor(photo("astronaut"))[:, :64, :64]
    with pytest.raises(ImageError, match=r"y: values must lie in \[0, 1\].*255"):
        fn(x, x * 255)
    with pytest.raises(ImageError, match=r"x: values must lie in \[0, 1\].*\[-1, 1\]"):
        fn(x * 2 - 1, x)
    with pytest.raises(ImageError, match="same shape"):
        fn(x, x[:, :, :60])
    with pytest.raises(ImageError, match=r"expected shape"):
        fn(x[0], x[0])
    with pytest.raises(ImageError, match="float"):
        fn((x * 255).to(torch.uint8), x)



@pytest.mark.parametrize("data_range", [0, -1.0, float("inf"), float("nan")])
@pytest.mark.parametrize("fn", [metrics.psnr, metrics.ssim, metrics.ssim_components, metrics.ms_ssim,
                                metrics.ms_ssim_core], ids=lambda f: f.__name__)
def test_data_range_must_be_positive_and_finite(fn, data_range):
    x = torch.rand(1, 1, 40, 40, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="data_range must be a positive, finite number"):
        fn(x, x.flip(-1), data_range=data_range)


@pytest.mark.parametrize("weights", [[0.5, float("nan")], [0.5, float("inf")], [1.0, -0.5], [0.0, 0.0]],
                         ids=["nan", "inf", "negative", "all-zero"])
def test_ms_ssim_weights_must_be_finite_non_negative_and_not_all_zero(weights):
    x = torch.rand(1, 40, 40, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="weights must be finite and non-negative, and not all zero"):
        metrics.ms_ssim(x, x.flip(-1), weights=weights)
    assert metrics.ms_ssim(x, x.flip(-1), weights=[0.0, 1.0]).dim() == 0   # a zero among others is allowed

def test_ssim_size_limit():
    x = torch.rand(3, 10, 40)
    with pytest.raises(ImageError, match="11x11"):
        metrics.ssim(x, x)


def test_checkerboard_finds_a_two_pixel_pattern_and_not_a_photo():
    from skimage import data as skdata
    photo = torch.from_numpy(skdata.astronaut()[:128, :128].copy()).permute(2, 0, 1).float() / 255
    ii, jj = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    pattern = ((ii + jj) % 2).float().expand(3, -1, -1)
    clean = float(metrics.checkerboard(photo))
    assert clean < 1e-2
    assert float(metrics.checkerboard(pattern)) == pytest.approx(1.0, abs=1e-6)
    assert float(metrics.checkerboard((photo + 0.05 * pattern).clamp(0, 1))) > 10 * clean
    assert metrics.checkerboard(torch.stack([photo, pattern])).shape == (2,)


def test_gradient_energy_falls_with_blur():
    from i2icourse import distortions
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    assert (metrics.gradient_energy(distortions.gaussian_blur(x, 2.0)) < 0.5 * metrics.gradient_energy(x)).all()
    assert float(metrics.gradient_energy(torch.full((1, 32, 32), 0.3))) == 0.0
