"""The networks of the course, one paper-shaped file per family; they import only torch.

    from i2icourse.models.unet import UNetGenerator
"""
