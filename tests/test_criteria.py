"""Pruning criteria (lth_prune.criteria): scores against a second formulation, exact counts, and
gradual magnitude pruning's schedule."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torch.nn.utils.prune as prune
from torch import nn

import lth_prune
from lth_prune.criteria import (
    CRITERIA,
    SNIP,
    GradualMagnitudePruning,
    GraSP,
    MagnitudeAtInit,
    RandomAtInit,
    SynFlow,
    criterion,
    grasp_scores,
    magnitude_scores,
    prune_at_init,
    random_scores,
    snip_scores,
    synflow_scores,
)


def _net(bias: bool = True, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 6, bias=bias), nn.ReLU(), nn.Linear(6, 3, bias=bias))


def _batches(seed: int = 1, count: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(5, 1, 3, 4, generator=generator), torch.randint(0, 3, (5,), generator=generator)) for _ in range(count)]


def _scores(name: str, net: nn.Module) -> dict:
    return CRITERIA[name].scores(net, _batches(), input_shape=(1, 3, 4), seed=2)


def test_the_registry_names_every_criterion():
    assert list(CRITERIA) == ["snip", "grasp", "synflow", "magnitude-init", "random"]
    assert criterion("snip") is SNIP
    with pytest.raises(ValueError, match=r"criterion\(\): name must be one of \['grasp', 'magnitude-init', 'random', 'snip', 'synflow'\], got 'obd'"):
        criterion("obd")


def test_snip_is_the_mask_derivative_of_the_loss():
    """SNIP's connection sensitivity: dL/dc at c = 1 for weights c * w (Lee et al.'s own form)."""
    net, batches = _net(), _batches()
    scores = snip_scores(net, batches)
    for layer in (net[1], net[3]):
        gates = torch.ones_like(layer.weight, requires_grad=True)
        gated = layer.register_forward_hook(
            lambda module, args, output: F.linear(args[0], module.weight * gates, module.bias))
        total = sum(torch.autograd.grad(F.cross_entropy(net(x), y), gates)[0] for x, y in batches)
        gated.remove()
        assert torch.allclose(scores[(layer, "weight")], total.abs(), atol=1e-6)


def test_grasp_is_weight_times_hessian_gradient_product():
    net, batches = _net(), _batches()
    scores = grasp_scores(net, batches, temperature=2.0)
    parameters = [net[1].weight, net[3].weight]
    shapes = [p.shape for p in parameters]
    sizes = [p.numel() for p in parameters]

    def loss(flat: torch.Tensor) -> torch.Tensor:
        first, second = torch.split(flat, sizes)
        total = 0.0
        for inputs, targets in batches:
            hidden = F.relu(F.linear(inputs.flatten(1), first.view(shapes[0]), net[1].bias))
            total = total + F.cross_entropy(F.linear(hidden, second.view(shapes[1]), net[3].bias) / 2.0, targets)
        return total

    flat = torch.cat([p.detach().flatten() for p in parameters]).double()
    gradient = torch.autograd.functional.jacobian(lambda f: loss(f.float()).double(), flat)
    hessian = torch.autograd.functional.hessian(lambda f: loss(f.float()).double(), flat)
    expected = (flat * (hessian @ gradient)).float()
    got = torch.cat([scores[(net[1], "weight")].flatten(), scores[(net[3], "weight")].flatten()])
    assert torch.allclose(got, expected, rtol=1e-3, atol=1e-7)
    assert (got < 0).any() and (got > 0).any()  # signed: GraSP keeps large negative values last


def test_synflow_by_hand_and_its_conservation_law():
    torch.manual_seed(0)
    first, second = nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=False)
    net = nn.Sequential(first, nn.ReLU(), second)
    scores = synflow_scores(net, (4,))
    # R = 1^T |W2| |W1| 1, so dR/d|W1|_ij = sum_k |W2|_ki and dR/d|W2|_ki = sum_j |W1|_ij.
    w1, w2 = first.weight.detach().abs(), second.weight.detach().abs()
    assert torch.allclose(scores[(first, "weight")], w1 * w2.sum(0).unsqueeze(1), atol=1e-6)
    assert torch.allclose(scores[(second, "weight")], w2 * w1.sum(1).unsqueeze(0), atol=1e-6)
    # Scaling a layer by c and the next by 1/c leaves every score unchanged (Tanaka et al., Thm 1).
    with torch.no_grad():
        first.weight.mul_(7.0)
        second.weight.div_(7.0)
    rescaled = synflow_scores(net, (4,))
    for key, value in scores.items():
        assert torch.allclose(rescaled[key], value, rtol=1e-5)


def test_synflow_needs_no_data_and_leaves_the_model_as_it_was():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 2 * 2, 3))
    net.train()
    before = {key: value.clone() for key, value in net.state_dict().items()}
    scores = synflow_scores(net, (1, 4, 4))
    assert net.training and all(torch.equal(before[key], value) for key, value in net.state_dict().items())
    assert all(bool((score >= 0).all()) for score in scores.values())
    with pytest.raises(ValueError, match=r"synflow_scores\(\): input_shape must be one example's shape"):
        synflow_scores(net, None)


def test_scoring_on_data_leaves_batchnorm_statistics_alone():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)).eval()
    before = {key: value.clone() for key, value in net.state_dict().items()}
    for score in (snip_scores, grasp_scores):
        score(net, _batches())
        assert not net.training and all(torch.equal(before[key], value) for key, value in net.state_dict().items())


@pytest.mark.parametrize("name", sorted(CRITERIA))
def test_every_criterion_prunes_exact_counts_globally_and_never_regrows(name):
    net = _net()
    cls = CRITERIA[name]
    pairs = lth_prune.prunable(net)
    total = sum(module.weight.numel() for module, _ in pairs)
    prune.global_unstructured(pairs, pruning_method=cls, importance_scores=_scores(name, net), amount=0.5)
    first = lth_prune.get_masks(net)
    assert sum(int(mask.sum()) for mask in first.values()) == total - round(0.5 * total)
    prune.global_unstructured(lth_prune.prunable(net), pruning_method=cls, importance_scores=_scores(name, net), amount=0.5)
    second = lth_prune.get_masks(net)
    remaining = total - round(0.5 * total)
    assert sum(int(mask.sum()) for mask in second.values()) == remaining - round(0.5 * remaining)
    assert all(bool((second[key] <= first[key]).all()) for key in first)


@pytest.mark.parametrize("name", sorted(CRITERIA))
def test_every_criterion_per_layer_and_its_functional_twin(name):
    net = _net()
    cls = CRITERIA[name]
    scores = _scores(name, net)
    cls.apply(net[1], "weight", amount=10, importance_scores=scores[(net[1], "weight")])
    assert int(net[1].weight_mask.sum()) == 62
    twin = getattr(lth_prune, {"magnitude-init": "magnitude_at_init", "random": "random_at_init"}.get(name, name) + "_unstructured")
    if name == "random":
        twin(net[3], "weight", 4, seed=3)
    else:
        twin(net[3], "weight", 4, scores[(net[3], "weight")])
    assert int(net[3].weight_mask.sum()) == 14


def test_the_lowest_score_is_pruned_first():
    layer = nn.Linear(4, 1, bias=False)
    scores = torch.tensor([[0.5, -2.0, 3.0, 0.1]])
    GraSP.apply(layer, "weight", amount=2, importance_scores=scores)
    assert layer.weight_mask.tolist() == [[1.0, 0.0, 1.0, 0.0]]  # -2.0 and 0.1 go
    magnitude = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        magnitude.weight.copy_(scores)
    MagnitudeAtInit.apply(magnitude, "weight", amount=2, importance_scores=magnitude_scores(magnitude)[(magnitude, "weight")])
    assert magnitude.weight_mask.tolist() == [[0.0, 1.0, 1.0, 0.0]]  # |0.5| and |0.1| go


def test_a_criterion_without_its_scores_is_refused():
    with pytest.raises(ValueError, match=r"SNIP.apply\(\): importance_scores must be given \(from SNIP.scores\(model, ...\)\), got None"):
        SNIP.apply(nn.Linear(3, 3), "weight", amount=2)
    with pytest.raises(ValueError, match=r"importance_scores must be a tensor of the shape of weight, \(3, 3\), got \(2,\)"):
        SNIP.apply(nn.Linear(3, 3), "weight", amount=2, importance_scores=torch.ones(2))


def test_prune_at_init_global_layerwise_and_in_rounds():
    net = _net()
    prune_at_init(net, SNIP, remaining=20, batches=_batches())
    assert sum(int(mask.sum()) for mask in lth_prune.get_masks(net).values()) == 20
    layered = _net()
    prune_at_init(layered, RandomAtInit, remaining={"1": 30, "3": 5}, seed=4)
    assert int(layered[1].weight_mask.sum()) == 30 and int(layered[3].weight_mask.sum()) == 5
    iterative = _net()
    prune_at_init(iterative, SynFlow, remaining=9, rounds=20, input_shape=(1, 3, 4))
    assert sum(int(mask.sum()) for mask in lth_prune.get_masks(iterative).values()) == 9
    hooks = [hook for hook in iterative[1]._forward_pre_hooks.values() if isinstance(hook, prune.BasePruningMethod)]
    assert len(hooks) == 1  # the rounds' masks collapsed into one
    with pytest.raises(ValueError, match=r"SNIP scores a network on data; pass batches="):
        prune_at_init(_net(), SNIP, remaining=5)
    with pytest.raises(ValueError, match=r"remaining must be in \[0, 90\] \(the prunable weights\), got 91"):
        prune_at_init(_net(), RandomAtInit, remaining=91)
    with pytest.raises(ValueError, match=r"remaining must give a count for each prunable layer \['1', '3'\], got \['1'\]"):
        prune_at_init(_net(), RandomAtInit, remaining={"1": 3})
    with pytest.raises(TypeError, match=r"method must be a Criterion subclass"):
        prune_at_init(_net(), lth_prune.LotteryTicket, remaining=3)


def test_iterative_synflow_keeps_every_layer_alive():
    """One-shot magnitude at 99.5 % can empty a narrow layer; iterative SynFlow does not (layer collapse)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(200, 100), nn.ReLU(), nn.Linear(100, 4), nn.ReLU(), nn.Linear(4, 2))
    total = sum(m.weight.numel() for m in net if isinstance(m, nn.Linear))
    prune_at_init(net, SynFlow, remaining=round(0.005 * total), input_shape=(200,))
    assert all(int(m.weight_mask.sum()) > 0 for m in net if isinstance(m, nn.Linear))


def test_random_scores_are_reproducible():
    net = _net()
    assert torch.equal(random_scores(net, 5)[(net[1], "weight")], random_scores(net, 5)[(net[1], "weight")])
    assert not torch.equal(random_scores(net, 5)[(net[1], "weight")], random_scores(net, 6)[(net[1], "weight")])


def test_gradual_magnitude_pruning_follows_the_cubic_schedule_exactly():
    net = _net()
    total = 90
    gmp = GradualMagnitudePruning(net, 0.8, start_step=10, end_step=50, every=10)
    assert [gmp.sparsity_at(step) for step in (0, 9, 10)] == [0.0, 0.0, 0.0]
    counts, previous = [], None
    for step in range(1, 61):
        if gmp.step(step):
            masks = lth_prune.get_masks(net)
            counts.append((step, sum(row.remaining for row in lth_prune.sparsity_report(net))))
            if previous:
                assert all(bool((masks[key] <= previous[key]).all()) for key in previous)
            previous = masks
    expected = [(step, total - round(total * (0.8 - 0.8 * (1 - (step - 10) / 40) ** 3))) for step in (10, 20, 30, 40, 50)]
    assert counts == expected and counts[-1][1] == 18


def test_gradual_magnitude_pruning_per_layer_and_counted_by_the_optimizer():
    net = _net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    gmp = GradualMagnitudePruning(net, {"1": 0.5, "3": 0.25}, end_step=4, every=2, optimizer=optimizer)
    for _ in range(5):
        optimizer.zero_grad()
        net(torch.randn(4, 1, 3, 4)).sum().backward()
        optimizer.step()
    assert gmp.steps_seen == 5
    assert int(net[1].weight_mask.sum()) == 36 and int(net[3].weight_mask.sum()) == 14
    gmp.remove()
    with pytest.raises(ValueError, match=r"final_sparsity must be in \[0, 1\), got 1.0"):
        GradualMagnitudePruning(_net(), 1.0, end_step=4)
    with pytest.raises(ValueError, match=r"start_step and end_step must satisfy 0 <= start_step < end_step, got 5 and 5"):
        GradualMagnitudePruning(_net(), 0.5, start_step=5, end_step=5)
    with pytest.raises(ValueError, match=r"final_sparsity must give a sparsity for each prunable layer \['1', '3'\], got \['1'\]"):
        GradualMagnitudePruning(_net(), {"1": 0.5}, end_step=4)
