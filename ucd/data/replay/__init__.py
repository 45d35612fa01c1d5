"""Replay for RECALL: sources of old-class images, replay sets built once per step, and the
mixing of replayed images into the step's batches (see each module).

Names are loaded on first use, so that commands that only need ``SOURCES`` (the command line
parser of every ``ucd`` call) do not import torch.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "MixedBatchSampler": "mix", "ReplayMix": "mix",
    "ReplayDataset": "sets", "build_replay_set": "sets", "describe_source": "sets",
    "load_replay_set": "sets", "old_classes": "sets",
    "SOURCES": "sources", "DigitsSource": "sources", "FolderSource": "sources",
    "GeneratorSource": "sources", "make_source": "sources", "replay_glyph_pool": "sources",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
