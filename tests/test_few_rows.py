"""Few-row linear layers: the same values as F.linear, only where they apply, and undone on exit."""

import pytest
import torch
import torch.nn.functional as F
import whisper

from espnet_cs.few_rows import MAX_ROWS, few_rows_linear, few_rows_linears, weight_slices


def test_weight_slices_divide_the_rows():
    assert weight_slices(512) == 16 and weight_slices(51865) == 11 and weight_slices(51866) == 2
    assert weight_slices(7) == 7 and weight_slices(17) == 1


@pytest.mark.parametrize("rows", [1, 3, MAX_ROWS])
@pytest.mark.parametrize("out_features", [96, 51865])
def test_few_rows_linear_equals_f_linear(rows, out_features):
    torch.manual_seed(0)
    x, weight, bias = torch.randn(rows, 1, 64), torch.randn(out_features, 64), torch.randn(out_features)
    y = few_rows_linear(x, weight, bias)
    assert y.shape == (rows, 1, out_features)
    torch.testing.assert_close(y, F.linear(x, weight, bias))
    torch.testing.assert_close(few_rows_linear(x, weight), x @ weight.T)


def test_many_rows_take_f_linear():
    x, weight = torch.randn(MAX_ROWS + 1, 64), torch.randn(96, 64)
    assert torch.equal(few_rows_linear(x, weight), F.linear(x, weight))


def test_gradients_flow_as_through_f_linear():
    weight = torch.randn(96, 64, requires_grad=True)
    x = torch.randn(2, 64, requires_grad=True)
    few_rows_linear(x, weight).square().sum().backward()
    expected_w, expected_x = torch.autograd.grad(F.linear(x, weight).square().sum(), (weight, x))
    torch.testing.assert_close(weight.grad, expected_w)
    torch.testing.assert_close(x.grad, expected_x)


def test_few_rows_linears_changes_whisper_layers_only_and_keeps_hooks():
    torch.manual_seed(0)
    model = torch.nn.Sequential(whisper.model.Linear(64, 96), torch.nn.Linear(96, 32))
    x = torch.randn(2, 64)
    expected = model(x)
    seen = []
    model[0].register_forward_hook(lambda module, inputs, output: seen.append(output.shape))
    with few_rows_linears(model):
        assert "forward" in vars(model[0]) and "forward" not in vars(model[1])
        with few_rows_linears(model):
            torch.testing.assert_close(model(x), expected)
        assert "forward" in vars(model[0])  # still the outer block's
    assert "forward" not in vars(model[0])
    assert seen == [(2, 96)]
