"""RECALL's labels on hand-built old-model outputs: replayed pixels, background inpainting,
ignore pixels."""

import pytest
import torch

from ucd.losses.recall import recall_targets, replay_class, replay_code

R2, R3 = replay_code(2), replay_code(3)  # pixels of images drawn for class 2 / class 3


def _old(*pixels):
    """Old-model logits (1, 4, 1, N): one column of 4 class scores per pixel."""
    return torch.tensor(pixels, dtype=torch.float32).T.reshape(1, 4, 1, len(pixels))


# Old model scores of classes 0..3 at 6 pixels (old classes: background, 1, 2, 3).
OLD = _old(
    [0.0, 3.0, 1.0, 0.0],  # argmax 1; class 2 beats background
    [2.0, 0.0, 1.0, 5.0],  # argmax 3; background beats class 2
    [0.0, 0.0, 0.0, 4.0],  # argmax 3; class 2 ties background
    [1.0, 0.0, 0.0, 2.0],  # argmax 3
    [0.0, 2.0, 0.0, 0.0],  # argmax 1
    [0.0, 0.0, 7.0, 0.0],  # argmax 2
)


def test_replay_code_round_trip():
    labels = torch.tensor([[R2, R3, 0, 4, 255]])
    assert replay_class(labels).tolist() == [[2, 3, 0, 0, 0]]
    with pytest.raises(ValueError, match="class >= 1"):
        replay_code(0)


def test_replayed_pixels_are_background_or_their_class():
    labels = torch.tensor([[[R2, R2, R2, R3, R3, 255]]])
    out = recall_targets(labels, OLD, replay_labels="class")
    # class 2 beats background / loses / ties (ties go to background); class 3 beats
    # background; class 3 loses to background; 255 (crop padding) stays ignored
    assert out.tolist() == [[[2, 0, 0, 3, 0, 255]]]


def test_replayed_pixels_with_the_old_argmax():
    labels = torch.tensor([[[R2, R2, R2, R3, R3, 255]]])
    out = recall_targets(labels, OLD, replay_labels="old")
    assert out.tolist() == [[[1, 3, 3, 3, 1, 255]]]


def test_background_and_ignore_inpainting_keep_new_class_pixels():
    labels = torch.tensor([[[0, 4, 255, 0, 5, 255]]])  # 4, 5: the step's new classes
    both = recall_targets(labels, OLD, inpaint_background=True, inpaint_ignore=True)
    assert both.tolist() == [[[1, 4, 3, 3, 5, 2]]]
    background = recall_targets(labels, OLD, inpaint_background=True, inpaint_ignore=False)
    assert background.tolist() == [[[1, 4, 255, 3, 5, 255]]]
    neither = recall_targets(labels, OLD, inpaint_background=False, inpaint_ignore=False)
    assert neither.tolist() == labels.tolist()


def test_input_is_not_modified_and_batch_images_are_independent():
    old = torch.cat([OLD, OLD.flip(-1)])  # image 1: pixel j holds the scores of pixel 5 - j
    labels = torch.tensor([[[0, 4, 255, 0, 0, 4]], [[R3, R3, R3, R3, R3, 255]]])
    before = labels.clone()
    out = recall_targets(labels, old)
    assert torch.equal(labels, before)
    assert out[0].tolist() == [[1, 4, 3, 3, 1, 4]]  # the step's image: 0 and 255 inpainted
    assert out[1].tolist() == [[0, 0, 3, 3, 3, 255]]  # replayed: its padding stays ignored


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="replay_labels"):
        recall_targets(torch.zeros(1, 1, 6, dtype=torch.long), OLD, replay_labels="all")
    with pytest.raises(ValueError, match="must be \\(B, H, W\\)"):
        recall_targets(torch.zeros(1, 6, dtype=torch.long), OLD)
    with pytest.raises(ValueError, match="drawn for class 4"):
        recall_targets(torch.full((1, 1, 6), replay_code(4)), OLD)
    with pytest.raises(TypeError, match="integer"):
        recall_targets(torch.zeros(1, 1, 6), OLD)
