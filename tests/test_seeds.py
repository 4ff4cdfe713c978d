"""Mean ± std over seeds and the verdicts of chapters 4-6 (i2icourse.seeds)."""
import pandas as pd
import pytest

from i2icourse import seeds


def _table():
    return pd.DataFrame([
        {"config": "L1", "seed": 0, "PSNR": 20.0, "SSIM": 0.50},
        {"config": "L1", "seed": 1, "PSNR": 21.0, "SSIM": 0.52},
        {"config": "L2", "seed": 0, "PSNR": 22.0, "SSIM": 0.51},
        {"config": "L2", "seed": 1, "PSNR": 23.0, "SSIM": 0.53},
    ])


def test_mean_std_formats_sample_std_in_order_of_appearance():
    table = seeds.mean_std(_table(), ["PSNR", "SSIM"])
    assert list(table.index) == ["L1", "L2"]
    assert table.loc["L1", "PSNR"] == "20.50 ± 0.71"  # sample std of (20, 21) = 0.707
    assert table.loc["L2", "SSIM"] == "0.520 ± 0.014"


def test_mean_std_refuses_a_single_seed():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        seeds.mean_std(_table().iloc[:3], ["PSNR"])


def test_verdicts_separate_disjoint_ranges_from_overlapping_ones():
    v = seeds.verdicts(_table(), ["PSNR", "SSIM"], baseline="L1")
    assert list(v.index) == ["L2"]
    assert v.loc["L2", "PSNR verdict"] == "beyond the seed spread"   # [22, 23] vs [20, 21]
    assert v.loc["L2", "SSIM verdict"] == "within the seed spread"   # [0.51, 0.53] vs [0.50, 0.52]
    assert v.loc["L2", "PSNR - L1"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no rows"):
        seeds.verdicts(_table(), ["PSNR"], baseline="L3")


def test_single_formats_a_baseline_with_the_same_decimals():
    assert seeds.single({"PSNR": 8.4812, "SSIM": -0.14937, "KID": 0.01234}, ["PSNR", "SSIM", "KID"], {"KID": 4}) \
        == ["8.48", "-0.149", "0.0123"]
