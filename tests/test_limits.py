"""Sizes that cannot describe a window are refused where the data pipelines take them, not cropped to nothing."""
from __future__ import annotations

import pytest
import torch

from i2icourse.data.augment import JointAugment, JointResize
from i2icourse.data.sr import SRPatches


@pytest.mark.parametrize("make", [JointAugment, JointResize], ids=lambda c: c.__name__)
@pytest.mark.parametrize("size", [0, -3, 2.5])
def test_joint_transforms_refuse_a_size_that_is_not_a_positive_integer(make, size):
    with pytest.raises(ValueError, match=rf"{make.__name__}: size must be a positive integer"):
        make(size)


def test_joint_transforms_keep_a_positive_size():
    a, b = torch.rand(3, 40, 40), torch.rand(3, 40, 40)
    g = torch.Generator().manual_seed(0)
    for transform in (JointAugment(16, generator=g), JointResize(16)):
        out_a, out_b = transform(a, b)
        assert out_a.shape == out_b.shape == (3, 16, 16)


@pytest.mark.parametrize("patch, patches, what", [(0, 10, "patch"), (-3, 10, "patch"), (8, 0, "patches"),
                                                  (8, -1, "patches")])
def test_sr_patches_refuse_a_patch_or_count_that_is_not_positive(patch, patches, what):
    photos = {"p": torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(0))}
    with pytest.raises(ValueError, match=f"SRPatches: {what} must be a positive integer"):
        SRPatches(photos, scale=2, patch=patch, patches=patches)
    assert len(SRPatches(photos, scale=2, patch=8, patches=3)) == 3
