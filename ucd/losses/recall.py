"""RECALL's labels (Maracani et al., ICCV 2021): replayed images and the step's background
labelled by the frozen step-(k-1) model, as pure functions on tensors.

A training batch of RECALL mixes the step's own images with replayed images of old classes
(``ucd.data.replay``). Replayed images come without labels: their label maps hold the code
``replay_code(c) = -(c + 1)`` on every pixel of an image drawn for old class c (255 where the
crop padded it). ``recall_targets`` turns such a batch into cross-entropy targets:

- replayed pixels (Label Evaluation Block): the old model's prediction, restricted to
  {background, c} (``replay_labels="class"``: the class the image was generated or retrieved
  for is known, so the pixel is c or background) or over every old class (``"old"``: the plain
  argmax of the step-(k-1) model, as the official code does for step-0 classes);
- the step's own images (label inpainting): pixels labelled background (0) take the old model's
  argmax when ``inpaint_background`` (RECALL's "background inpainting"); ignore pixels (255)
  too when ``inpaint_ignore`` (the official code maps 255 to 0 before inpainting,
  training.py ``mix_label``); pixels of the step's classes keep their label. An image with a
  replayed pixel is a replayed image: its 255 pixels (crop padding) stay ignored.
Ties go to background (``argmax`` takes the first maximum).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ucd.data.replay.codes import replay_class, replay_code
from ucd.losses._checks import IGNORE_INDEX, check_logits

__all__ = ["REPLAY_LABEL_RULES", "recall_targets", "replay_class", "replay_code"]

REPLAY_LABEL_RULES = ("class", "old")


def _check(labels: Tensor, old_logits: Tensor) -> Tensor:
    old = check_logits("old_logits", old_logits)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor, got {labels.dtype}")
    if labels.shape != (old.shape[0], *old.shape[2:]):
        raise ValueError(f"labels {tuple(labels.shape)} must be (B, H, W) of old_logits "
                         f"{tuple(old.shape)}")
    n_old = old.shape[1]
    drawn = replay_class(labels)
    if bool((drawn >= n_old).any()):
        raise ValueError(f"a replayed pixel is drawn for class {int(drawn.max())}, but the old "
                         f"model knows only classes 0..{n_old - 1}")
    return old


def recall_targets(labels: Tensor, old_logits: Tensor, *, replay_labels: str = "class",
                   inpaint_background: bool = True, inpaint_ignore: bool = True) -> Tensor:
    """Cross-entropy targets (B, H, W) of a RECALL batch (see the module doc).

    labels: (B, H, W) integers: classes, 255 (ignore) or ``replay_code(c)`` on replayed pixels;
    old_logits: (B, T_{k-1}, H, W) scores of the frozen step-(k-1) model on the same images.
    """
    if replay_labels not in REPLAY_LABEL_RULES:
        raise ValueError(f"replay_labels must be one of {list(REPLAY_LABEL_RULES)}, "
                         f"got {replay_labels!r}")
    old = _check(labels, old_logits)
    with torch.no_grad():
        old_pred = old.argmax(1)
        replayed = labels < 0
        targets = labels.clone()
        if replay_labels == "class":
            drawn = replay_class(labels)
            score_c = old.gather(1, drawn.unsqueeze(1)).squeeze(1)
            in_class = score_c > old[:, 0]  # strictly: ties go to background
            targets[replayed] = torch.where(in_class, drawn, torch.zeros_like(drawn))[replayed]
        else:
            targets[replayed] = old_pred[replayed]
        fill = torch.zeros_like(replayed)
        if inpaint_background:
            fill |= labels == 0
        if inpaint_ignore:
            fill |= labels == IGNORE_INDEX
        fill &= ~replayed.flatten(1).any(1).view(-1, 1, 1)  # the step's own images only
        targets[fill] = old_pred[fill]
    return targets
