"""The eight image-to-image networks of the SSIM-quality-map paper (Table I), behind one builder.

Every model maps a distorted image (B, 3, H, W) in [0, 1] to a predicted SSIM map (B, 1, H, W) in
[0, 1]; H and W must be multiples of 32 (five halvings). The names follow the paper:

====================  ======  ==============================================================
name                  type    what
====================  ======  ==============================================================
``fcn``               FCN     VGG-16-style encoder (stride 32), 1x1 "fc" convolutions, one
                              transposed convolution x32 back to full size (FCN-32s: the skip
                              fusion of FCN-8s removed, as in the paper)
``dcnn``              FCN     DeepLab (v3) style: ResNet-50 with atrous (dilated) last stages,
                              output stride 8, atrous spatial pyramid pooling, bilinear x8
``unet``              U-Net   Ronneberger's U-Net with 4 levels (3 poolings)
``unet32``            U-Net   the same with 5 levels (4 poolings) and 32 filters at the top
``densenet121_unet``  U-Net   torchvision DenseNet-121 encoder + U-Net decoder
``resnet18_unet``     U-Net   torchvision ResNet-18 encoder + U-Net decoder
``resnet50_unet``     U-Net   torchvision ResNet-50 encoder + U-Net decoder
``gan``               GAN     the pix2pix U-Net generator (trained with a PatchGAN, cGAN + lambda L1)
====================  ======  ==============================================================

The encoder U-Nets use the decoder of the ``segmentation_models`` library the paper's numbers come
from: at each of five x2 upsamplings, concatenate the encoder feature of that scale, then two
3x3 Conv-BN-ReLU (256, 128, 64, 32, 16 filters). With ``weights=None`` (the default, offline) the
encoders start from random weights; ``weights="DEFAULT"`` loads torchvision's ImageNet weights (a
download: use it on Colab).

**Output in [0, 1]: a sigmoid.** The targets are SSIM maps clamped to [0, 1] (see
:func:`i2icourse.data.quality_maps.ssim_target`). A sigmoid keeps every prediction in range *and*
a gradient everywhere; a clamp would pass no gradient for predictions outside [0, 1], so a unit stuck
above 1 on the many all-ones pristine maps would never come back. The GAN's generator ends in tanh
(pix2pix); its output is mapped from [-1, 1] to [0, 1], which is the same function up to scale
(tanh(z) = 2 sigmoid(2z) - 1).

Taught in chapter 1 (``notebooks/01_ssim_quality_maps.ipynb``), which shows :class:`UNet` and trains
four of the eight. Imports only torch and torchvision (the encoders).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F


# ----------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------


def conv_bn_relu(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    """3x3 convolution (same size), BatchNorm, ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """U-Net's block: two 3x3 Conv-BN-ReLU."""
    return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


class MapHead(nn.Module):
    """The last layer of every regressor: a convolution to 1 channel, then a sigmoid to [0, 1]."""

    def __init__(self, cin: int, kernel: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, 1, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))  # (B, 1, H, W) in [0, 1]


def _check_input(x: torch.Tensor, multiple: int = 32) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) image batch, got {tuple(x.shape)}")
    if x.shape[-2] % multiple or x.shape[-1] % multiple:
        raise ValueError(f"image sides must be multiples of {multiple}, got {x.shape[-2]}x{x.shape[-1]}")


# ----------------------------------------------------------------------------------------------
# FCN (FCN-32s, VGG-16-style encoder)
# ----------------------------------------------------------------------------------------------

class FCN(nn.Module):
    """FCN-32s: VGG-16 blocks (2, 2, 3, 3, 3 convolutions; widths w, 2w, 4w, 8w, 8w), each ending in a
    2x2 max-pool, so the features are 1/32 of the image; then ``fc`` 1x1 "fully connected" convolutions,
    a 1x1 score layer and a single transposed convolution (kernel 64, stride 32) back to full size.

    Without the fusion of finer scores (FCN-8s), every output pixel comes from a 1/32 grid: the maps
    are coarse and can show a grid -- what the paper saw.
    """

    def __init__(self, width: int = 32, fc: int = 1024, score: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for n_convs, w in zip((2, 2, 3, 3, 3), (width, 2 * width, 4 * width, 8 * width, 8 * width)):
            for _ in range(n_convs):
                layers.append(conv_bn_relu(cin, w))
                cin = w
            layers.append(nn.MaxPool2d(2))                     # halves H and W
        self.encoder = nn.Sequential(*layers)                  # (B, 8w, H/32, W/32)
        self.fc = nn.Sequential(nn.Conv2d(cin, fc, 1), nn.ReLU(inplace=True), nn.Dropout2d(0.5),
                                nn.Conv2d(fc, fc, 1), nn.ReLU(inplace=True), nn.Dropout2d(0.5),
                                nn.Conv2d(fc, score, 1))       # (B, score, H/32, W/32)
        self.up = nn.ConvTranspose2d(score, 1, 64, stride=32, padding=16)  # (B, 1, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x)
        return torch.sigmoid(self.up(self.fc(self.encoder(x))))


# ----------------------------------------------------------------------------------------------
# DCNN (DeepLab v3 style)
# ----------------------------------------------------------------------------------------------

class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: parallel 1x1 and dilated 3x3 convolutions and an image-level
    pooling branch, concatenated and projected (DeepLab v3)."""

    def __init__(self, cin: int, cout: int = 256, rates: Sequence[int] = (6, 12, 18)):
        super().__init__()
        self.branches = nn.ModuleList([nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                                                     nn.ReLU(inplace=True))])
        self.branches.extend(conv_bn_relu(cin, cout, dilation=r) for r in rates)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False),
                                  nn.ReLU(inplace=True))  # no BN on a 1x1 map (a batch of one would fail)
        self.project = nn.Sequential(nn.Conv2d(cout * (len(rates) + 2), cout, 1, bias=False),
                                     nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.Dropout(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [b(x) for b in self.branches]
        feats.append(self.pool(x).expand(-1, -1, *x.shape[-2:]))  # image-level feature, broadcast
        return self.project(torch.cat(feats, 1))


class DCNN(nn.Module):
    """DeepLab-style: a ResNet-50 whose last two stages use dilation instead of stride (output stride 8,
    the field of view grows without losing resolution), ASPP, a 3x3 convolution and a 1x1 to one
    channel, bilinear upsampling x8 and a sigmoid."""

    def __init__(self, weights: str | None = None, aspp: int = 256, rates: Sequence[int] = (6, 12, 18)):
        super().__init__()
        from torchvision.models import resnet50
        net = resnet50(weights=weights, replace_stride_with_dilation=[False, True, True])
        self.backbone = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool,
                                      net.layer1, net.layer2, net.layer3, net.layer4)  # (B, 2048, H/8, W/8)
        self.aspp = ASPP(2048, aspp, rates)
        self.head = nn.Sequential(conv_bn_relu(aspp, aspp), nn.Conv2d(aspp, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, 8)
        y = self.head(self.aspp(self.backbone(x)))             # (B, 1, H/8, W/8)
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(y)                                # (B, 1, H, W)


# ----------------------------------------------------------------------------------------------
# U-Net (Ronneberger et al. 2015)
# ----------------------------------------------------------------------------------------------

class UNet(nn.Module):
    """U-Net with ``levels`` resolutions (``levels - 1`` max-poolings), ``base`` filters at the top,
    doubling per level; decoder: 2x2 transposed convolution, concatenate the skip, double conv.

    ``UNet(levels=4)`` is the paper's "U-Net", ``UNet(levels=5, base=32)`` its "U-Net32" (chapter 1).
    """

    def __init__(self, levels: int = 4, base: int = 16, in_channels: int = 3):
        super().__init__()
        widths = [base * 2 ** i for i in range(levels)]
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(double_conv(cin, w))
            cin = w
        self.ups = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.ups.append(nn.ConvTranspose2d(cin, w, 2, stride=2))
            self.dec.append(double_conv(2 * w, w))
            cin = w
        self.head = MapHead(cin)
        self.multiple = 2 ** (levels - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.multiple)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))      # level i: (B, base*2^i, H/2^i, W/2^i)
            skips.append(x)
        skips.pop()                                             # the bottom level is not a skip
        for up, dec in zip(self.ups, self.dec):
            x = up(x)                                           # doubles H and W
            x = dec(torch.cat([x, skips.pop()], 1))             # concatenate the encoder's feature
        return self.head(x)                                     # (B, 1, H, W)


# ----------------------------------------------------------------------------------------------
# Encoder U-Nets: torchvision encoders + the segmentation_models decoder
# ----------------------------------------------------------------------------------------------

class ResNetEncoder(nn.Module):
    """torchvision ResNet features at strides 2, 4, 8, 16, 32."""

    def __init__(self, depth: int = 18, weights: str | None = None):
        super().__init__()
        import torchvision.models as tvm
        net = {18: tvm.resnet18, 34: tvm.resnet34, 50: tvm.resnet50}[depth](weights=weights)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)          # (B, 64, H/2, W/2)
        self.stages = nn.ModuleList([nn.Sequential(net.maxpool, net.layer1), net.layer2, net.layer3, net.layer4])
        e = 4 if depth == 50 else 1                                      # bottleneck expansion
        self.channels = [64, 64 * e, 128 * e, 256 * e, 512 * e]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))                               # H/4, H/8, H/16, H/32
        return feats


class DenseNetEncoder(nn.Module):
    """torchvision DenseNet-121 features at strides 2 (relu0), 4, 8, 16 (dense blocks 1-3) and 32 (block 4)."""

    def __init__(self, weights: str | None = None):
        super().__init__()
        from torchvision.models import densenet121
        f = densenet121(weights=weights).features
        self.stem = nn.Sequential(f.conv0, f.norm0, f.relu0)            # (B, 64, H/2, W/2)
        self.stages = nn.ModuleList([
            nn.Sequential(f.pool0, f.denseblock1),                       # (B, 256, H/4)
            nn.Sequential(f.transition1, f.denseblock2),                 # (B, 512, H/8)
            nn.Sequential(f.transition2, f.denseblock3),                 # (B, 1024, H/16)
            nn.Sequential(f.transition3, f.denseblock4, f.norm5, nn.ReLU(inplace=True)),  # (B, 1024, H/32)
        ])
        self.channels = [64, 256, 512, 1024, 1024]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        return feats


class EncoderUNet(nn.Module):
    """An encoder giving features at strides 2..32 and a U-Net decoder of five blocks (``decoder`` filters):
    upsample x2 (nearest), concatenate the encoder feature of that scale (none at full size), two
    Conv-BN-ReLU; then a 3x3 convolution to one channel and a sigmoid."""

    def __init__(self, encoder: nn.Module, decoder: Sequence[int] = (256, 128, 64, 32, 16)):
        super().__init__()
        self.encoder = encoder
        ch = list(encoder.channels)                             # strides 2, 4, 8, 16, 32
        skips = ch[-2::-1] + [0]                                # 16, 8, 4, 2, then none at stride 1
        self.blocks = nn.ModuleList()
        cin = ch[-1]
        for w, s in zip(decoder, skips):
            self.blocks.append(double_conv(cin + s, w))
            cin = w
        self.head = MapHead(cin, kernel=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x)
        feats = self.encoder(x)
        y = feats.pop()                                         # (B, C5, H/32, W/32)
        for block in self.blocks:
            y = F.interpolate(y, scale_factor=2, mode="nearest")
            if feats:
                y = torch.cat([y, feats.pop()], 1)              # the skip of the same scale
            y = block(y)
        return self.head(y)                                     # (B, 1, H, W)


# ----------------------------------------------------------------------------------------------
# The cGAN's generator
# ----------------------------------------------------------------------------------------------

class MapGenerator(nn.Module):
    """The pix2pix U-Net generator ``G`` (images in [-1, 1], tanh output) seen as a map predictor:
    [0, 1] image in, [0, 1] map out. Train ``.G`` with :class:`i2icourse.recipes.pix2pix.Pix2Pix`."""

    def __init__(self, depth: int = 8, ngf: int = 64, dropout: float = 0.5):
        super().__init__()
        from i2icourse.models.unet import UNetGenerator
        self.G = UNetGenerator(3, 1, depth=depth, ngf=ngf, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, 2 ** self.G.depth)
        return (self.G(2 * x - 1) + 1) / 2                      # (B, 1, H, W) in [0, 1]


# ----------------------------------------------------------------------------------------------
# The builder
# ----------------------------------------------------------------------------------------------

def fcn(width: int = 32, fc: int = 1024) -> nn.Module:
    return FCN(width, fc)


def dcnn(weights: str | None = None, aspp: int = 256) -> nn.Module:
    return DCNN(weights, aspp)


def unet(base: int = 16) -> nn.Module:
    return UNet(levels=4, base=base)


def unet32(base: int = 32) -> nn.Module:
    return UNet(levels=5, base=base)


def densenet121_unet(weights: str | None = None, decoder: Sequence[int] = (256, 128, 64, 32, 16)) -> nn.Module:
    return EncoderUNet(DenseNetEncoder(weights), decoder)


def resnet18_unet(weights: str | None = None, decoder: Sequence[int] = (256, 128, 64, 32, 16)) -> nn.Module:
    return EncoderUNet(ResNetEncoder(18, weights), decoder)


def resnet50_unet(weights: str | None = None, decoder: Sequence[int] = (256, 128, 64, 32, 16)) -> nn.Module:
    return EncoderUNet(ResNetEncoder(50, weights), decoder)


def gan(depth: int = 8, ngf: int = 64) -> nn.Module:
    return MapGenerator(depth, ngf)


#: name -> (function building the model, the paper's name, the paper's type).
MODELS: dict[str, tuple[Callable[..., nn.Module], str, str]] = {
    "fcn": (fcn, "FCN", "FCN"),
    "dcnn": (dcnn, "DCNN", "FCN"),
    "unet": (unet, "U-Net", "U-Net"),
    "unet32": (unet32, "U-Net32", "U-Net"),
    "densenet121_unet": (densenet121_unet, "Densenet121-unet", "U-Net"),
    "resnet18_unet": (resnet18_unet, "Resnet18-unet", "U-Net"),
    "resnet50_unet": (resnet50_unet, "Resnet50-unet", "U-Net"),
    "gan": (gan, "GAN(U-Net)", "GAN"),
}


def build(name: str, **options) -> nn.Module:
    """The model ``name`` (a key of :data:`MODELS`) built with ``options`` (its function's keywords)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name][0](**options)
