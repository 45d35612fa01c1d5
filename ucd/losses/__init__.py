"""Loss functions: pure functions on tensors, one loss per module."""

from ucd.losses.contrastive import contrastive_loss, dense_contrastive_loss  # noqa: F401
from ucd.losses.feature_distill import feature_mse, masked_feature_distill  # noqa: F401
from ucd.losses.kd import kd_loss  # noqa: F401
from ucd.losses.lwf_mc import lwf_mc_loss, multilabel_bce  # noqa: F401
from ucd.losses.mib_ce import unbiased_cross_entropy  # noqa: F401
from ucd.losses.mib_kd import unbiased_kd  # noqa: F401
from ucd.losses.plop_pseudo import (  # noqa: F401
    EntropyHistogram,
    entropy_thresholds,
    plop_pseudo_labels,
    pseudo_ce,
)
from ucd.losses.pod import fold_new_logits, local_pod  # noqa: F401
from ucd.losses.recall import recall_targets, replay_class, replay_code  # noqa: F401
from ucd.losses.regularizers import (  # noqa: F401
    FisherEMA,
    PathIntegral,
    RiemannianWalk,
    ewc_importance,
    pi_importance,
    quadratic_penalty,
    rw_importance,
)
from ucd.losses.sdr import (  # noqa: F401
    attraction_loss,
    prototype_matching_loss,
    repulsion_loss,
    sparsity_loss,
    update_prototypes,
)
from ucd.losses.ucd import pixel_contrastive_loss, segment_contrastive_loss, ucd_loss  # noqa: F401
