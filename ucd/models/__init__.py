"""DeepLab-V3 models with an incremental classifier and In-Place ABN (or its fallback)."""

from ucd.models.abn import HAVE_INPLACE_ABN, ActivatedBatchNorm, norm_act
from ucd.models.deeplab import ASPP, DeepLabV3, IncrementalClassifier, build_model

__all__ = [
    "ASPP",
    "HAVE_INPLACE_ABN",
    "ActivatedBatchNorm",
    "DeepLabV3",
    "IncrementalClassifier",
    "build_model",
    "norm_act",
]
