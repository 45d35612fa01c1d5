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


def _dilations(model):
    return [b.dilation[0] for b in model.head.branches[1:]]


def test_aspp_rates_option_scales_the_head_to_the_feature_map():
    assert _dilations(build_model(SMALL, [[0, 1]])) == [12, 24, 36]  # DeepLab-V3, stride 8
    assert _dilations(build_model({**SMALL, "output_stride": 16}, [[0, 1]])) == [6, 12, 18]
    model = build_model({**SMALL, "aspp_rates": [1, 2, 3]}, [[0, 1]])
    assert _dilations(model) == [1, 2, 3]
    assert [b.padding[0] for b in model.head.branches[1:]] == [1, 2, 3]


def _registry(tmp_path, monkeypatch, state, digest=None):
    import yaml

    import ucd.models.deeplab as deeplab
    from ucd.models.pretrain import sha256

    torch.save(state, tmp_path / "w.pt")
    entry = {"file": "w.pt", "sha256": digest or sha256(tmp_path / "w.pt"),
             "produced_by": "python -m ucd.models.pretrain --out w.pt"}
    (tmp_path / "weights.yaml").write_text(yaml.safe_dump({"tiny-w8": entry}))
    monkeypatch.setattr(deeplab, "WEIGHTS_DIR", tmp_path)


def test_packaged_weights_load_by_name_after_their_hash_is_checked(tmp_path, monkeypatch):
    source = build_model(SMALL, [[0, 1]])
    _registry(tmp_path, monkeypatch, source.body.state_dict())
    model = build_model({**SMALL, "pretrained": "tiny-w8"}, [[0, 1]])
    torch.testing.assert_close(model.body.conv1.weight, source.body.conv1.weight)
    _registry(tmp_path, monkeypatch, source.body.state_dict(), digest="0" * 64)
    with pytest.raises(ValueError, match="have SHA-256 .* not the registered 0000"):
        build_model({**SMALL, "pretrained": "tiny-w8"}, [[0, 1]])
    (tmp_path / "w.pt").unlink()
    with pytest.raises(FileNotFoundError, match="rebuild it: python -m ucd.models.pretrain"):
        build_model({**SMALL, "pretrained": "tiny-w8"}, [[0, 1]])


def test_shipped_weights_match_their_registry_and_backbone():
    from ucd.models.deeplab import packaged_weights

    registry = packaged_weights()
    assert registry, "ucd/models/weights/weights.yaml lists the packaged weights"
    for name, entry in registry.items():
        r = entry["recipe"]
        cfg = {"backbone": r["backbone"], "width": r["width"], "output_stride": 8,
               "head_channels": 16, "norm": "abn", "pretrained": name}
        model = build_model(cfg, [[0, 1]])  # hash checked, every key matched
        assert model.body.conv1.weight.abs().sum() > 0
