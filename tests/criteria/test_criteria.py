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
    return CRITERIA.get(name).scores(net, _batches(), input_shape=(1, 3, 4), seed=2)


def test_the_registry_names_every_criterion():
    assert CRITERIA.names()[:5] == ["snip", "grasp", "synflow", "magnitude-init", "random"]
    assert CRITERIA.get("snip") is SNIP and CRITERIA.title("magnitude-init") == "magnitude at init"
    with pytest.raises(ValueError, match=r"^criterion must be one of \['snip', 'grasp', 'synflow', 'magnitude-init', 'random'.*\], got 'obd'"):
        CRITERIA.get("obd")


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


@pytest.mark.parametrize("name", sorted(CRITERIA.names()))
def test_every_criterion_prunes_exact_counts_globally_and_never_regrows(name):
    net = _net()
    cls = CRITERIA.get(name)
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


@pytest.mark.parametrize("name", sorted(CRITERIA.names()))
def test_every_criterion_per_layer_and_its_functional_twin(name):
    net = _net()
    cls = CRITERIA.get(name)
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


# --- what a new user passes: one batch, numpy counts, the BatchNorm mode, zero scores, ties ---


@pytest.mark.parametrize("name", ["snip", "grasp", "synflow"])
def test_one_batch_passed_as_a_pair_is_read_as_one_batch(name):
    # A convolution, so that SynFlow, which takes the input shape from the first batch, needs the right one.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 2 * 3, 3))
    inputs, targets = _batches(count=1)[0]
    one = CRITERIA.get(name).scores(net, (inputs, targets))
    listed = CRITERIA.get(name).scores(net, [(inputs, targets)])
    assert one.keys() == listed.keys()
    assert all(torch.equal(one[key], listed[key]) for key in listed)


def test_two_batches_in_a_list_or_a_tuple_stay_two_batches():
    net = _net()
    first, second = _batches(count=2)
    both = snip_scores(net, [first, second])
    for batches in ((first, second), iter([first, second])):
        again = snip_scores(net, batches)
        assert all(torch.equal(again[key], both[key]) for key in both)
    alone = snip_scores(net, [first])
    assert not torch.equal(alone[(net[1], "weight")], both[(net[1], "weight")])


def test_prune_at_init_takes_one_batch_as_a_pair_and_reads_it_every_round():
    inputs, targets = _batches(count=1)[0]
    net, twin = _net(), _net()
    prune_at_init(net, SNIP, remaining=20, batches=(inputs, targets))
    prune_at_init(twin, SNIP, remaining=20, batches=[(inputs, targets)])
    assert all(torch.equal(mask, lth_prune.get_masks(twin)[key]) for key, mask in lth_prune.get_masks(net).items())
    # A generator is read once; SNIP in three rounds still sees the batch in each of them.
    rounds = _net()
    prune_at_init(rounds, SNIP, remaining=20, rounds=3, batches=iter([(inputs, targets)]))
    assert sum(int(mask.sum()) for mask in lth_prune.get_masks(rounds).values()) == 20


WHAT_TO_PASS = r"batches must be a list of \(inputs, targets\) batches, or one \(inputs, targets\) batch, got "


@pytest.mark.parametrize("call, caller, reads_all", [
    (lambda net, batches: snip_scores(net, batches), r"snip_scores\(\)", True),
    (lambda net, batches: grasp_scores(net, batches), r"grasp_scores\(\)", True),
    (lambda net, batches: SynFlow.scores(net, batches), r"SynFlow.scores\(\)", False),
    (lambda net, batches: prune_at_init(net, SNIP, remaining=5, batches=batches), r"prune_at_init\(\)", True),
])
def test_batches_that_are_not_batches_are_refused_with_what_to_pass(call, caller, reads_all):
    inputs, targets = _batches(count=1)[0]
    with pytest.raises(TypeError, match=caller + ": " + WHAT_TO_PASS + r"a Tensor of shape \(5, 1, 3, 4\)\."):
        call(_net(), inputs)
    with pytest.raises(TypeError, match=caller + ": " + WHAT_TO_PASS + r"a list whose batch 0 is a Tensor\."):
        call(_net(), [inputs])
    with pytest.raises(TypeError, match=caller + ": " + WHAT_TO_PASS + r"a list whose batch 0 is a tuple of 3\."):
        call(_net(), [(inputs, targets, targets)])
    with pytest.raises(TypeError, match=caller + ": " + WHAT_TO_PASS + r"a tuple of \(Tensor, list\)\."):
        call(_net(), (inputs, targets.tolist()))
    if reads_all:  # SynFlow reads the first batch's shape only
        with pytest.raises(TypeError, match=caller + ": " + WHAT_TO_PASS + r"a list whose batch 1 is a dict\."):
            call(_net(), [(inputs, targets), {"x": inputs}])
    with pytest.raises(ValueError, match=caller + r": batch 0 must hold as many targets as inputs, got 5 inputs and 4 targets\."):
        call(_net(), (inputs, targets[:4]))
    with pytest.raises(ValueError, match=caller + r": batches must yield at least one batch, got none\."):
        call(_net(), [])


def test_remaining_takes_numpy_integers_and_says_a_fraction_is_not_a_count():
    np = pytest.importorskip("numpy")
    net = _net()
    prune_at_init(net, RandomAtInit, remaining=np.int64(20), seed=4)
    assert sum(int(mask.sum()) for mask in lth_prune.get_masks(net).values()) == 20
    layered = _net()
    prune_at_init(layered, RandomAtInit, remaining={"1": np.int64(30), "3": np.int32(5)}, seed=4)
    assert int(layered[1].weight_mask.sum()) == 30 and int(layered[3].weight_mask.sum()) == 5
    with pytest.raises(TypeError, match=(
        r"prune_at_init\(\): remaining must be a count of weights to keep \(an int, or a dict of ints by layer\), "
        r"got 0.1 \(a float\); to keep a fraction of the 90 prunable weights, pass remaining=round\(fraction \* 90\)\."
    )):
        prune_at_init(_net(), RandomAtInit, remaining=0.1)
    with pytest.raises(TypeError, match=(
        r"prune_at_init\(\): remaining\['1'\] must be a count of weights to keep \(an int\), got 0.5 \(a float\); "
        r"to keep a fraction of its 72 weights, pass round\(fraction \* 72\)\."
    )):
        prune_at_init(_net(), RandomAtInit, remaining={"1": 0.5, "3": 5})
    with pytest.raises(TypeError, match=r"remaining\['3'\] must be a count of weights to keep \(an int\), got True"):
        prune_at_init(_net(), RandomAtInit, remaining={"1": 5, "3": True})
    with pytest.raises(TypeError, match=r"remaining must be a count of weights to keep .*, got True"):
        prune_at_init(_net(), RandomAtInit, remaining=True)


def _batchnorm_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))


@pytest.mark.parametrize("score, paper", [(snip_scores, "eval"), (grasp_scores, "train")])
def test_batchnorm_scores_depend_on_the_mode_and_default_to_the_papers(score, paper):
    net = _batchnorm_net().eval()
    before = {key: value.clone() for key, value in net.state_dict().items()}
    by_mode = {mode: score(net, _batches(), mode=mode) for mode in ("train", "eval")}
    default = score(net, _batches())
    layer = (net[1], "weight")
    assert not torch.allclose(by_mode["train"][layer], by_mode["eval"][layer])
    assert all(torch.equal(default[key], by_mode[paper][key]) for key in default)
    assert not net.training and all(torch.equal(before[key], value) for key, value in net.state_dict().items())
    net.train()
    score(net, _batches(), mode="eval")
    assert net.training
    with pytest.raises(ValueError, match=r"_scores\(\): mode must be 'train', 'eval' or None \(the paper's\), got 'training'\."):
        score(net, _batches(), mode="training")


@pytest.mark.parametrize("method, score", [(SNIP, snip_scores), (GraSP, grasp_scores)])
def test_the_mode_passes_through_the_criterion_and_prune_at_init(method, score):
    for mode in ("train", "eval"):
        expected = score(_batchnorm_net(), _batches(), mode=mode)
        through_class = method.scores(_batchnorm_net(), _batches(), mode=mode)
        through_prune = prune_at_init(_batchnorm_net(), method, remaining=30, batches=_batches(), mode=mode)
        for got in (through_class, through_prune):
            assert [torch.equal(a, b) for a, b in zip(got.values(), expected.values())] == [True, True]


def _bias_free_net_with_a_dead_layer() -> nn.Module:
    net = _net(bias=False)
    with torch.no_grad():
        net[3].weight.zero_()
    return net


def test_prune_at_init_refuses_scores_that_are_all_zero_before_pruning_anything():
    net = _bias_free_net_with_a_dead_layer()
    with pytest.raises(ValueError, match=(
        r"prune_at_init\(\): SynFlow's scores must tell the unpruned weights apart, got every one of the 90 zero "
        r"\(layers \['1', '3'\]\) before any pruning; the layers with no unpruned nonzero weight are \['3'\]: "
        r"nothing reaches the output through them, so the mask would be chosen by position\. Nothing was pruned\."
    )):
        prune_at_init(net, SynFlow, remaining=30, input_shape=(1, 3, 4))
    assert not prune.is_pruned(net)
    # A layer fully pruned beforehand cuts every path too.
    cut = _net(bias=False)
    lth_prune.LotteryTicket.apply(cut[3], "weight", amount=1.0)
    with pytest.raises(ValueError, match=r"every one of the 72 zero \(layers \['1'\]\) .* with no unpruned nonzero weight are \['3'\]"):
        prune_at_init(cut, SynFlow, remaining=30, input_shape=(1, 3, 4))
    assert not hasattr(cut[1], "weight_mask")
    # Layer by layer, the layer that cannot be ranked is named, and the others are not pruned either.
    layered = _bias_free_net_with_a_dead_layer()
    with pytest.raises(ValueError, match=r"MagnitudeAtInit's scores .* every one of the 18 zero \(layers \['3'\]\)"):
        prune_at_init(layered, MagnitudeAtInit, remaining={"1": 30, "3": 5})
    assert not prune.is_pruned(layered)


def test_pruning_by_all_zero_scores_warns_that_the_choice_is_by_position():
    net = _bias_free_net_with_a_dead_layer()
    scores = synflow_scores(net, (1, 3, 4))
    assert all(int(score.count_nonzero()) == 0 for score in scores.values())
    with pytest.warns(UserWarning, match=r"SynFlow.compute_mask\(\): every score of the unpruned entries is zero"):
        prune.global_unstructured(lth_prune.prunable(net), pruning_method=SynFlow, importance_scores=scores, amount=0.5)
    assert sum(int(mask.sum()) for mask in lth_prune.get_masks(net).values()) == 45


def test_prune_at_init_warns_when_its_own_rounds_cut_every_path_and_keeps_the_count():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3, bias=False), nn.ReLU(), nn.Linear(3, 3, bias=False), nn.ReLU(), nn.Linear(3, 2, bias=False))
    # Rounds 8 and 9 of 10 keep 2 and 1 of the 27 weights: two weights cannot make a path through three
    # layers, so round 9 ranks nothing but zeros. The rounds go on, and the count is kept.
    with pytest.warns(UserWarning, match=r"SynFlow.compute_mask\(\): every score of the unpruned entries is zero.*by position"):
        prune_at_init(net, SynFlow, remaining=1, rounds=10, input_shape=(4,))
    assert sum(int(mask.sum()) for mask in lth_prune.get_masks(net).values()) == 1


def test_a_criterion_breaks_ties_at_random_from_a_seed():
    def pruned(tie_break):
        layer = nn.Linear(10, 10, bias=False)
        SNIP.apply(layer, "weight", amount=30, importance_scores=torch.ones(10, 10), tie_break=tie_break)
        return layer.weight_mask

    assert int(pruned(0).sum()) == 70
    assert torch.equal(pruned(0), pruned(0)) and not torch.equal(pruned(0), pruned(1))
    assert pruned(None)[:3].sum() == 0  # by position: the first three rows
