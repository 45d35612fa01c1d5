"""The pure-PyTorch activated batch norm must match In-Place ABN's semantics."""

import os
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from ucd.models import abn
from ucd.models.abn import ActivatedBatchNorm, norm_act


def _reference(x, weight, bias, eps=1e-5, slope=0.01):
    """Independent computation: batch statistics, |w| + eps affine, LeakyReLU."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    w = (weight.abs() + eps).view(1, -1, 1, 1)
    y = (x - mean) / torch.sqrt(var + eps) * w + bias.view(1, -1, 1, 1)
    return torch.where(y >= 0, y, slope * y)


def test_fallback_matches_hand_computation_with_negative_weights():
    torch.manual_seed(0)
    layer = ActivatedBatchNorm(3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([-2.0, 0.5, 1.0]))
        layer.bias.copy_(torch.tensor([0.1, -0.2, 0.0]))
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    layer = layer.double()
    y = layer(x)
    torch.testing.assert_close(y, _reference(x, layer.weight, layer.bias))
    # running stats use the unbiased variance, like BatchNorm2d
    n = x.numel() / 3
    expected_var = 0.9 * 1 + 0.1 * x.var(dim=(0, 2, 3), unbiased=False) * n / (n - 1)
    torch.testing.assert_close(layer.running_var, expected_var)


def test_fallback_identity_activation_and_eval_mode():
    layer = ActivatedBatchNorm(2, activation="identity").eval()
    with torch.no_grad():
        layer.running_mean.copy_(torch.tensor([1.0, -1.0]))
        layer.running_var.copy_(torch.tensor([4.0, 1.0]))
        layer.weight.copy_(torch.tensor([-1.0, 2.0]))
    x = torch.zeros(1, 2, 1, 1)
    y = layer(x).flatten()
    eps = 1e-5
    expected = torch.tensor(
        [(0 - 1) / (4 + eps) ** 0.5 * (1 + eps), (0 + 1) / (1 + eps) ** 0.5 * (2 + eps)]
    )
    torch.testing.assert_close(y, expected)


def test_state_dict_keys_equal_batchnorm():
    assert ActivatedBatchNorm(4).state_dict().keys() == nn.BatchNorm2d(4).state_dict().keys()


def test_unknown_implementation_and_activation_are_refused():
    with pytest.raises(ValueError, match="unknown norm implementation 'foo'"):
        norm_act(3, impl="foo")
    with pytest.raises(ValueError, match="unknown activation 'relu6'"):
        ActivatedBatchNorm(3, activation="relu6")


def require_inplace_abn() -> None:
    """Skip without In-Place ABN: allowed on CI without a CUDA toolkit, a failure with one."""
    if abn.HAVE_INPLACE_ABN:
        return
    homes = [os.environ.get("CUDA_HOME", ""), "/usr/local/cuda"]  # where `make iabn` looks too
    found = [shutil.which("nvcc")] + [str(Path(h, "bin", "nvcc")) for h in homes if h]
    nvcc = next((p for p in found if p and Path(p).is_file()), None)
    if nvcc is None:  # tests/ci_strict.py allows this reason
        pytest.skip("no CUDA toolkit (nvcc) to build inplace-abn: the pure-PyTorch twin runs")
    pytest.skip(f"inplace-abn is not installed or does not load, although {nvcc} is: make iabn")


@pytest.mark.parametrize("activation", ["leaky_relu", "identity"])
def test_fallback_matches_real_inplace_abn(activation):
    require_inplace_abn()
    from inplace_abn import InPlaceABN

    torch.manual_seed(0)
    real = InPlaceABN(3, activation=activation, activation_param=0.01)
    ours = ActivatedBatchNorm(3, activation=activation)
    with torch.no_grad():
        real.weight.copy_(torch.tensor([-1.5, 0.7, 2.0]))
        real.bias.copy_(torch.tensor([0.3, -0.1, 0.05]))
    ours.load_state_dict(real.state_dict())
    x = torch.randn(4, 3, 6, 6)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    g = torch.randn(4, 3, 6, 6)
    y_real = real(x1 * 1.0)  # in-place op needs a non-leaf input
    y_ours = ours(x2)
    torch.testing.assert_close(y_ours, y_real, atol=1e-5, rtol=1e-5)
    (y_real * g).sum().backward()
    (y_ours * g).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours.weight.grad, real.weight.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours.bias.grad, real.bias.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours.running_mean, real.running_mean)
    torch.testing.assert_close(ours.running_var, real.running_var)
    real.eval()
    ours.eval()
    torch.testing.assert_close(ours(x), real(x.clone()), atol=1e-5, rtol=1e-5)


def test_no_environment_variable_chooses_the_norm(monkeypatch):
    """model.norm decides: UCD_NORM (which once overrode "auto") changes nothing."""
    expected = norm_act(4, impl="auto")
    other = "abn" if abn.HAVE_INPLACE_ABN else "iabn"
    monkeypatch.setenv("UCD_NORM", other)
    assert type(norm_act(4, impl="auto")) is type(expected)
    assert isinstance(expected, ActivatedBatchNorm) != abn.HAVE_INPLACE_ABN
