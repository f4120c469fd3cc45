"""Linear mode connectivity (lth_prune.connectivity): the error along the line between two networks."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lth_prune import interpolation_path
from lth_prune.data import load_dataset
from lth_prune.rewind import capture_state
from lth_prune.training import train


def _trained(seed: int, data, init: int | None = None, norm: bool = False) -> nn.Module:
    torch.manual_seed(seed if init is None else init)
    layers: list[nn.Module] = [nn.Flatten()]
    for width_in in (64, 128, 128):  # three hidden layers: independent solutions are far apart
        layers += [nn.Linear(width_in, 128), *([nn.BatchNorm1d(128)] if norm else []), nn.ReLU()]
    net = nn.Sequential(*layers, nn.Linear(128, 10))
    torch.manual_seed(seed)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    train(net, optimizer, data.loaders(32, seed=seed)[0], lambda step: 0.05, iterations=600, eval_every=600)
    return net


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits")


def test_two_identical_copies_are_perfectly_stable(data):
    net = _trained(0, data)
    state = capture_state(net)
    path = interpolation_path(net, state, state, data.loaders(200)[2])
    assert len(path.alphas) == 30 and path.alphas[0] == 0.0 and path.alphas[-1] == 1.0
    assert path.instability == 0.0 and len(set(path.errors)) == 1


def test_independently_initialized_networks_are_not(data):
    a, b = _trained(0, data, init=0), _trained(1, data, init=1)
    path = interpolation_path(a, capture_state(a), capture_state(b), data.loaders(500)[2])
    assert path.errors[0] < 0.1 and path.errors[-1] < 0.1  # both trained well
    assert path.instability > 0.1  # the midpoint of two unrelated solutions is far worse than either


def test_the_model_is_left_as_it_was_and_masks_are_kept(data):
    import torch.nn.utils.prune as prune

    net = _trained(0, data)
    prune.random_unstructured(net[1], "weight", amount=0.5)
    other = {key: value + 0.1 for key, value in capture_state(net).items()}
    before = capture_state(net)
    interpolation_path(net, capture_state(net), other, data.loaders(200)[2], points=4)
    assert all(torch.equal(before[key], value) for key, value in capture_state(net).items())
    assert bool((net[1].weight[net[1].weight_mask == 0] == 0).all())


def test_batchnorm_statistics_can_be_reestimated(data):
    net = _trained(0, data, norm=True)
    state = capture_state(net)
    shifted = {key: value * 3 if key.endswith("running_mean") else value for key, value in state.items()}
    plain = interpolation_path(net, state, shifted, data.loaders(200)[2], points=3)
    reestimated = interpolation_path(net, state, shifted, data.loaders(200)[2], points=3, reestimate=data.loaders(64)[0])
    # The weights are the same at every point: re-estimated, so are the statistics and the error;
    # interpolated, the statistics (and so the error) move along the path.
    assert len(set(reestimated.errors)) == 1
    assert len(set(plain.errors)) > 1


def test_bad_arguments():
    net = nn.Linear(2, 2)
    state = capture_state(net)
    with pytest.raises(ValueError, match=r"points must be an int >= 2, got 1"):
        interpolation_path(net, state, state, [], points=1)
    with pytest.raises(ValueError, match=r"state_a and state_b must have the same keys and shapes"):
        interpolation_path(net, state, {"weight": state["weight"]}, [])
