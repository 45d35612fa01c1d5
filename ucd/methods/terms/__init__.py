"""Loss-term adapters, one module per family; importing this package registers every term.

Each term wraps one pure loss of ``ucd.losses`` for the engine (see ``ucd.methods.base``).
"""

from ucd.methods.terms import (  # noqa: F401  (registration side effects)
    classification,
    contrastive,
    distillation,
    regularizers,
    sdr,
)
from ucd.methods.terms.common import labels_at  # noqa: F401
