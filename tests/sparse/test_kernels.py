"""Sparse training kernels: values and gradients equal the masked dense linear layer's."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lth_prune.sparse.kernels import CsrPattern, sparse_linear


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("density", [0.0, 0.05, 0.5, 1.0])
def test_forward_and_gradients_match_dense(bias, density):
    generator = torch.Generator().manual_seed(0)
    keep = torch.rand(12, 9, generator=generator) < density
    weight = (torch.randn(12, 9, generator=generator) * keep).requires_grad_()
    b = torch.randn(12, generator=generator, requires_grad=True) if bias else None
    x = torch.randn(2, 3, 9, generator=generator, requires_grad=True)
    out = sparse_linear(x, weight, b, CsrPattern(keep))
    grad = torch.randn(out.shape, generator=generator)
    out.backward(grad)
    got = (out.detach(), x.grad.clone(), weight.grad.clone(), None if b is None else b.grad.clone())
    for tensor in (x, weight, b):
        if tensor is not None:
            tensor.grad = None
    reference = F.linear(x, weight * keep, b)
    reference.backward(grad)
    assert torch.allclose(got[0], reference.detach(), atol=1e-5)
    assert torch.allclose(got[1], x.grad, atol=1e-5)
    assert torch.allclose(got[2], weight.grad, atol=1e-5)
    assert bool((got[2][~keep] == 0).all())
    if b is not None:
        assert torch.allclose(got[3], b.grad, atol=1e-5)


def test_gradcheck():
    keep = torch.rand(6, 5, generator=torch.Generator().manual_seed(1)) < 0.4
    pattern = CsrPattern(keep)
    x = torch.randn(3, 5, dtype=torch.double, requires_grad=True)
    w = (torch.randn(6, 5, dtype=torch.double) * keep).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, c: sparse_linear(a, c, None, pattern), (x, w))


def test_pattern_shape_error():
    with pytest.raises(ValueError, match=r"keep must be 2-d \(out, in\), got shape \(3,\)"):
        CsrPattern(torch.ones(3, dtype=torch.bool))
