"""Chapter 5 (KL-augmented pix2pix): the KL term, joint augmentation, label-map task, drone converter, checks."""
import pytest
import torch
from PIL import Image
from torch.distributions import Categorical, kl_divergence

from i2icourse import losses
from i2icourse.data.augment import JointAugment, JointResize, inscribed_side
from i2icourse.data.labelmaps import PALETTE, colour_code, convert_drone, labelmap_pair, palette_fraction
from i2icourse.data.paired import AlignedDataset, read_pairs
from i2icourse.models.patchgan import patchgan
from i2icourse.models.unet import UNetGenerator
from i2icourse.recipes.pix2pix import Pix2Pix

torch.set_num_threads(1)


# --- the KL term ----------------------------------------------------------------------------------

def test_kl_zero_for_identical_and_for_a_brightness_factor():
    x = torch.rand(2, 3, 16, 16)
    assert float(losses.kl_loss(x, x)) == pytest.approx(0.0, abs=1e-7)
    assert float(losses.kl_loss(0.5 * x, x, eps=0)) == pytest.approx(0.0, abs=1e-6)


def test_kl_non_negative_and_asymmetric():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        x, y = torch.rand(1, 3, 8, 8, generator=g), torch.rand(1, 3, 8, 8, generator=g) ** 3
        assert float(losses.kl_loss(x, y)) >= 0
    assert float(losses.kl_loss(x, y)) != pytest.approx(float(losses.kl_loss(y, x)), rel=1e-3)


def test_kl_equals_torch_distributions_on_hand_made_distributions():
    p = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]])   # target's channels
    q = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4]])  # prediction's channels
    target, pred = p.view(1, 2, 2, 2), q.view(1, 2, 2, 2)             # images whose pixels sum to 1
    want = kl_divergence(Categorical(probs=p), Categorical(probs=q)).mean()  # KL(p || q) per channel, averaged
    assert float(losses.kl_loss(pred, target, eps=0)) == pytest.approx(float(want), rel=1e-5)
    # the scale of an image does not matter: it is normalised to a distribution first
    assert float(losses.kl_loss(pred * 2, target * 1.4, eps=0)) == pytest.approx(float(want), rel=1e-5)
    # and torch's kl_div computes the same when handed log q and p, the way it expects
    tk = torch.nn.functional.kl_div(q.log(), p, reduction="sum") / 2
    assert float(tk) == pytest.approx(float(want), rel=1e-5)


def test_kl_finite_gradients_near_zero():
    target = torch.zeros(1, 3, 8, 8)
    target[..., :2, :2] = 1e-8
    pred = torch.zeros(1, 3, 8, 8, requires_grad=True)
    loss = losses.kl_loss(pred, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
    with pytest.raises(Exception):
        losses.kl_loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4) * 2 - 1)  # a [-1, 1] target is refused


# --- joint augmentation ----------------------------------------------------------------------------

def _label_photo(size=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    classes = torch.randint(0, len(PALETTE), (size // 8, size // 8), generator=g)
    classes = classes.repeat_interleave(8, 0).repeat_interleave(8, 1)
    return colour_code(classes), torch.rand(3, size, size, generator=g)


def test_label_map_keeps_only_palette_colours_under_any_draw():
    a, b = _label_photo()
    aug = JointAugment(32, degrees=30, generator=torch.Generator().manual_seed(1))
    for _ in range(25):
        a2, b2 = aug(a, b)
        assert a2.shape == b2.shape == (3, 32, 32)
        assert palette_fraction(a2) == 1.0
    bilinear = JointAugment(32, degrees=30, nearest=(), generator=torch.Generator().manual_seed(1))
    assert min(palette_fraction(bilinear(a, b)[0]) for _ in range(10)) < 1.0  # the mistake the rule prevents


def test_pixelwise_relation_survives():
    a, _ = _label_photo(seed=3)
    # a nonlinear per-colour function (a permutation of the palette): exact when both sides are nearest
    perm = torch.roll(torch.arange(len(PALETTE)), 3)
    f_idx = (a.flatten(1).T[:, None, :] == PALETTE[None]).all(-1).float().argmax(1)
    b = PALETTE[perm[f_idx]].T.reshape(a.shape)
    aug = JointAugment(32, degrees=25, nearest=("A", "B"), generator=torch.Generator().manual_seed(2))
    for _ in range(10):
        a2, b2 = aug(a, b)
        idx = (a2.flatten(1).T[:, None, :] == PALETTE[None]).all(-1).float().argmax(1)
        assert torch.equal(b2, PALETTE[perm[idx]].T.reshape(b2.shape))
    # an affine function with bilinear resampling on both sides survives too (no empty corners: no fill)
    photo = torch.rand(3, 48, 48) * 0.5 + 0.25
    aug = JointAugment(32, degrees=25, nearest=(), generator=torch.Generator().manual_seed(3))
    for _ in range(10):
        p2, q2 = aug(photo, 1 - photo)
        assert torch.allclose(q2, 1 - p2, atol=1e-5)


def test_rotation_leaves_no_empty_corners():
    ones = torch.ones(3, 40, 40)
    aug = JointAugment(24, degrees=45, scale=1.0, generator=torch.Generator().manual_seed(0))
    for _ in range(10):
        a, b = aug(ones, ones)
        assert float(a.min()) == 1.0 and float(b.min()) > 0.99
    assert inscribed_side(100, 0) == 100 and inscribed_side(100, 45) == 70


def test_aligned_dataset_takes_a_pair_transform():
    pairs = [_label_photo(seed=s) for s in range(3)]
    ds = AlignedDataset(pairs, 32, transform=JointResize(32))
    item = ds[1]
    assert item["A"].shape == (3, 32, 32) and palette_fraction(item["A"]) == 1.0


# --- the label-map task and the drone converter ----------------------------------------------------

def test_labelmap_pair_from_a_photo():
    from skimage import data as skdata
    photo = torch.from_numpy(skdata.astronaut()[::8, ::8].copy()).permute(2, 0, 1).float() / 255
    a, b = labelmap_pair(photo, n_segments=40)
    assert a.shape == b.shape and palette_fraction(a) == 1.0
    assert len(torch.unique(a.flatten(1), dim=1).T) >= 2


def test_convert_drone(tmp_path):
    root = tmp_path / "drone"
    (root / "training_set/images").mkdir(parents=True)
    (root / "training_set/gt/semantic/label_images").mkdir(parents=True)
    for i in range(7):
        Image.new("RGB", (60, 40), (i * 30, 50, 90)).save(root / f"training_set/images/{i:03d}.jpg")
        Image.new("RGB", (60, 40), (128, 64, 128)).save(root / f"training_set/gt/semantic/label_images/{i:03d}.png")
    counts = convert_drone(root, tmp_path / "out", scale=10, n_train=5, n_test=2, seed=0)
    assert counts == {"train": 5, "test": 2}
    pairs = read_pairs(tmp_path / "out" / "train")
    assert len(pairs) == 5 and pairs[0][0].shape == (3, 4, 6)
    assert torch.allclose(pairs[0][0][:, 0, 0] * 255, torch.tensor([128.0, 64.0, 128.0]))
    again = convert_drone(root, tmp_path / "out2", scale=10, n_train=5, n_test=2, seed=0)
    assert again == counts
    assert sorted(p.name for p in (tmp_path / "out2/test").iterdir()) == sorted(p.name for p in (tmp_path / "out/test").iterdir())


# --- the extra-loss hook of Pix2Pix -----------------------------------------------------------------

def test_pix2pix_extra_loss_hook():
    torch.manual_seed(0)
    gan = Pix2Pix(UNetGenerator(3, 3, depth=5, ngf=4), patchgan(16, in_channels=6, ndf=4),
                  extra_loss=losses.kl_loss, extra_weight=0.2, extra_name="G_KL")
    batch = {"A": torch.rand(2, 3, 32, 32), "B": torch.rand(2, 3, 32, 32)}
    out = gan.step(batch)
    assert "G_KL" in out and out["G_KL"] >= 0
    assert out["G"] == pytest.approx(out["G_GAN"] + 100 * out["G_L1"] + 0.2 * out["G_KL"], rel=1e-4)
    plain = Pix2Pix(UNetGenerator(3, 3, depth=5, ngf=4), patchgan(16, in_channels=6, ndf=4)).step(batch)
    assert "G_KL" not in plain


# --- exercise checks -------------------------------------------------------------------------------

def hist_right(pred, target, bins=8, sigma=0.05):
    centres = torch.linspace(0, 1, bins)
    def hist(x):
        w = torch.exp(-(x.flatten(2)[..., None] - centres) ** 2 / (2 * sigma ** 2))
        h = w.sum(2)
        return h / h.sum(-1, keepdim=True)
    return (hist(pred) - hist(target)).abs().sum(-1).mean()


def hist_hard(pred, target, bins=8, sigma=0.05):  # a hard histogram: right values, no gradient
    def hist(x):
        h = torch.stack([torch.histc(c, bins, 0, 1) for c in x.flatten(0, 1)]).view(*x.shape[:2], bins)
        return h / h.sum(-1, keepdim=True)
    return (hist(pred) - hist(target)).abs().sum(-1).mean()


def hist_stub(pred, target, bins=8, sigma=0.05):
    raise NotImplementedError("ex-05-1")


def jitter_right(a, b, strength=0.3, generator=None):
    g = torch.rand(3, 1, 1, generator=generator) * 2 * strength + 1 - strength
    return a, (b * g).clamp(0, 1)


def jitter_both(a, b, strength=0.3, generator=None):
    g = torch.rand(3, 1, 1, generator=generator) * 2 * strength + 1 - strength
    return (a * g).clamp(0, 1), (b * g).clamp(0, 1)


def jitter_stub(a, b, strength=0.3, generator=None):
    raise NotImplementedError("ex-05-3")


@pytest.mark.parametrize("label,right,stub,wrong", [
    ("ex-05-1", hist_right, hist_stub, hist_hard),
    ("ex-05-3", jitter_right, jitter_stub, jitter_both),
])
def test_checks(label, right, stub, wrong, exercise_check):
    exercise_check(label, right, stub, wrong, hint="FAIL")
