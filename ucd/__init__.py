"""ucd: reference pipeline for class-incremental semantic segmentation (UCD, TPAMI)."""

__version__ = "0.1.0"
