"""DeepLab-V3 with a growing classifier."""

import math

import pytest
import torch

from ucd.models import build_model

SMALL = {"backbone": "resnet18", "width": 8, "head_channels": 16, "output_stride": 8, "norm": "abn"}


def test_shapes_and_outputs():
    model = build_model(SMALL, [[0, 1, 2]]).eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert out["logits"].shape == (2, 3, 32, 32)
    assert out["logits_low"].shape == (2, 3, 4, 4)
    assert out["features"].shape == (2, 16, 4, 4)
    assert [s.shape[-1] for s in out["stages"]] == [8, 4, 4, 4]


@pytest.mark.parametrize("os_, size", [(16, 2), (8, 4)])
def test_output_stride(os_, size):
    model = build_model({**SMALL, "output_stride": os_}, [[0, 1]]).eval()
    assert model(torch.randn(1, 3, 32, 32))["features"].shape[-1] == size


def test_adding_a_head_leaves_old_logits_unchanged():
    torch.manual_seed(0)
    model = build_model(SMALL, [[0, 1, 2]]).eval()
    x = torch.randn(2, 3, 32, 32)
    before = model(x)["logits"]
    model.classifier.add_step([3, 4])
    after = model(x)["logits"]
    assert after.shape[1] == 5
    torch.testing.assert_close(after[:, :3], before)
    assert model.classifier.classes_per_step == [[0, 1, 2], [3, 4]]


def test_mib_init_from_background():
    torch.manual_seed(0)
    model = build_model(SMALL, [[0, 1, 2]])
    clf = model.classifier
    b0 = clf.heads[0].bias[0].item()
    w0 = clf.heads[0].weight[0].clone()
    clf.add_step([3, 4])
    clf.init_new_head_from_background()
    expected = b0 - math.log(2 + 1)
    assert clf.heads[0].bias[0].item() == pytest.approx(expected)
    assert clf.heads[1].bias.tolist() == pytest.approx([expected, expected])
    for row in clf.heads[1].weight:
        torch.testing.assert_close(row, w0)
    # the old (non-background) rows are untouched
    assert clf.heads[0].weight.shape[0] == 3


def test_missing_pretrained_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.pretrained points to .*does not exist"):
        build_model({**SMALL, "pretrained": str(tmp_path / "resnet.pth")}, [[0, 1]])


def test_pretrained_weights_in_torchvision_format_load(tmp_path):
    source = build_model(SMALL, [[0, 1]])
    state = {k: v for k, v in source.body.state_dict().items()}
    state["fc.weight"] = torch.zeros(10, 64)  # classification head: dropped
    torch.save(state, tmp_path / "w.pth")
    model = build_model({**SMALL, "pretrained": str(tmp_path / "w.pth")}, [[0, 1]])
    torch.testing.assert_close(model.body.conv1.weight, source.body.conv1.weight)
