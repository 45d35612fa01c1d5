"""Replay for RECALL: sources of old-class images, replay sets built once per step, and the
mixing of replayed images into the step's batches (see each module)."""

from ucd.data.replay.mix import MixedBatchSampler, ReplayMix  # noqa: F401
from ucd.data.replay.sets import (  # noqa: F401
    ReplayDataset,
    build_replay_set,
    describe_source,
    load_replay_set,
    old_classes,
)
from ucd.data.replay.sources import (  # noqa: F401
    SOURCES,
    DigitsSource,
    FolderSource,
    GeneratorSource,
    make_source,
    replay_glyph_pool,
)
