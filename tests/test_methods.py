"""LotteryTicket, lottery_ticket_unstructured, prunable and prune_layerwise."""
from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
import torch.nn.utils.prune as prune
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import lth_prune
from lth_prune import LotteryTicket, PruningRates, lottery_ticket_unstructured, prunable, prune_layerwise


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 10))


def _convnet(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.Linear(16, 3)
    )


def _expected_remaining(total: int, amount: float, rounds: int) -> int:
    remaining = total
    for _ in range(rounds):
        remaining -= round(amount * remaining)
    return remaining


class TestLotteryTicketMask:
    def test_prunes_the_smallest_magnitudes_among_unpruned(self):
        t = torch.tensor([0.5, -0.1, 0.3, -0.9, 0.05, 0.7])
        default = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 1.0])
        mask = LotteryTicket(amount=2).compute_mask(t, default)
        # unpruned: 0.5, -0.1, -0.9, 0.7 -> the two smallest |w| are -0.1 and 0.5
        assert mask.tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 1.0]

    def test_float_amount_is_a_fraction_of_the_unpruned(self):
        t = torch.arange(1.0, 11.0)
        default = torch.ones(10)
        default[:5] = 0
        mask = LotteryTicket(amount=0.4).compute_mask(t, default)
        assert int(mask.sum()) == 3
        assert mask[:7].sum() == 0

    def test_ties_are_broken_by_position(self):
        t = torch.ones(8)
        mask = LotteryTicket(amount=3).compute_mask(t, torch.ones(8))
        assert mask.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]

    def test_nan_scores_keep_the_count_exact(self):
        t = torch.tensor([float("nan"), 0.1, float("nan"), 0.2])
        mask = LotteryTicket(amount=3).compute_mask(t, torch.ones(4))
        assert mask.tolist() == [0.0, 0.0, 1.0, 0.0]

    def test_amount_zero_and_all(self):
        t = torch.randn(5, 4)
        assert torch.equal(LotteryTicket(0.0).compute_mask(t, torch.ones_like(t)), torch.ones_like(t))
        assert int(LotteryTicket(1.0).compute_mask(t, torch.ones_like(t)).sum()) == 0

    @given(
        values=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=200),
        amount=st.floats(0.0, 1.0),
        rounds=st.integers(1, 6),
    )
    @settings(max_examples=60, deadline=None)
    def test_counts_exact_and_masks_monotone(self, values, amount, rounds):
        t = torch.tensor(values)
        mask = torch.ones_like(t)
        for _ in range(rounds):
            remaining = int(mask.sum())
            new = LotteryTicket(amount).compute_mask(t, mask)
            assert int(new.sum()) == remaining - round(amount * remaining)
            assert bool((new <= mask).all()), "a pruned weight grew back"
            pruned_now = (mask == 1) & (new == 0)
            kept = (new == 1)
            if pruned_now.any() and kept.any():
                assert t[pruned_now].abs().max() <= t[kept].abs().min()
            mask = new


class TestGlobalPruning:
    def test_exact_counts_over_five_rounds(self):
        model = _convnet()
        total = sum(m.weight.numel() for m, _ in prunable(model))
        for rounds in range(1, 6):
            prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.2)
            remaining = sum(int(m.weight_mask.sum()) for m, _ in prunable(model))
            assert remaining == _expected_remaining(total, 0.2, rounds)

    def test_pruned_entries_are_the_globally_smallest(self):
        model = _mlp()
        weights = torch.cat([m.weight.detach().abs().flatten() for m, _ in prunable(model)])
        prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=100)
        masks = torch.cat([m.weight_mask.flatten() for m, _ in prunable(model)])
        assert int((masks == 0).sum()) == 100
        assert weights[masks == 0].max() <= weights[masks == 1].min()

    def test_ranks_the_latest_trained_values(self):
        model = _mlp()
        prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.5)
        big, small = model[0], model[2]
        big_mask = big.weight_mask.clone()
        small_left = int(small.weight_mask.sum())
        with torch.no_grad():
            big.weight_orig.mul_(1000.0)  # an optimizer step: `weight` is now stale
        prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=small_left // 2)
        assert torch.equal(big.weight_mask, big_mask)
        assert int(small.weight_mask.sum()) == small_left - small_left // 2

    def test_matches_torch_l1_unstructured_counts(self):
        ours, theirs = _mlp(1), _mlp(1)
        for _ in range(3):
            prune.global_unstructured(prunable(ours), pruning_method=LotteryTicket, amount=0.3)
            prune.global_unstructured(prunable(theirs), pruning_method=prune.L1Unstructured, amount=0.3)
        for a, b in zip(ours, theirs):
            if isinstance(a, nn.Linear):
                assert int(a.weight_mask.sum()) == int(b.weight_mask.sum())

    def test_importance_scores_are_honoured(self):
        model = _mlp()
        first = model[0]
        scores = {(first, "weight"): torch.zeros_like(first.weight)}
        prune.global_unstructured(
            prunable(model), pruning_method=LotteryTicket, importance_scores=scores, amount=600
        )
        assert int(first.weight_mask.sum()) == 0
        assert int(model[2].weight_mask.sum()) == 300

    def test_gradients_of_pruned_weights_are_zero(self):
        model = _mlp()
        prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.7)
        model(torch.randn(4, 20)).pow(2).sum().backward()
        for module, _ in prunable(model):
            assert bool((module.weight_orig.grad[module.weight_mask == 0] == 0).all())
            assert module.weight_orig.grad[module.weight_mask == 1].abs().sum() > 0


class TestLocalPruning:
    def test_apply_round_after_round(self):
        layer = nn.Linear(25, 40)
        remaining = 1000
        for _ in range(5):
            LotteryTicket.apply(layer, "weight", amount=0.2)
            remaining -= round(0.2 * remaining)
            assert int(layer.weight_mask.sum()) == remaining
        assert remaining == 1000 - 200 - 160 - 128 - 102 - 82

    def test_functional_twin_and_importance_scores(self):
        layer = nn.Linear(4, 4)
        scores = torch.arange(16.0).reshape(4, 4)
        out = lottery_ticket_unstructured(layer, "weight", amount=4, importance_scores=scores)
        assert out is layer
        assert layer.weight_mask.flatten().tolist() == [0.0] * 4 + [1.0] * 12

    def test_parameter_identity_survives(self):
        layer = nn.Linear(4, 4)
        before = layer.weight
        lottery_ticket_unstructured(layer, "weight", amount=0.5)
        assert layer.weight_orig is before
        assert prune.is_pruned(layer)

    def test_prune_remove_makes_it_permanent(self):
        layer = nn.Linear(6, 6)
        lottery_ticket_unstructured(layer, "weight", amount=10)
        lottery_ticket_unstructured(layer, "weight", amount=10)
        prune.remove(layer, "weight")
        assert not prune.is_pruned(layer)
        assert int((layer.weight == 0).sum()) == 20
        assert isinstance(layer.weight, nn.Parameter)

    def test_bias_can_be_pruned_too(self):
        layer = nn.Linear(6, 10)
        lottery_ticket_unstructured(layer, "bias", amount=0.5)
        assert int(layer.bias_mask.sum()) == 5


class TestBadInput:
    @pytest.mark.parametrize(
        ("amount", "error", "text"),
        [(-1, ValueError, "got -1"), (1.5, ValueError, "got 1.5"), ("0.2", TypeError, "'0.2'"),
         (True, TypeError, "True")],
    )
    def test_amount(self, amount, error, text):
        with pytest.raises(error, match="amount") as info:
            LotteryTicket(amount)
        assert text in str(info.value)
        with pytest.raises(error, match="amount"):
            lottery_ticket_unstructured(nn.Linear(2, 2), "weight", amount)

    def test_int_amount_larger_than_the_tensor(self):
        layer = nn.Linear(3, 3)
        with pytest.raises(ValueError, match=r"amount must be at most .*\(9\), got 10"):
            lottery_ticket_unstructured(layer, "weight", 10)
        assert not prune.is_pruned(layer), "a failed apply must roll back"
        assert isinstance(layer.weight, nn.Parameter)

    def test_int_amount_larger_than_what_remains(self):
        layer = nn.Linear(3, 3)
        lottery_ticket_unstructured(layer, "weight", 5)
        with pytest.raises(ValueError, match=r"\(4\), got 5"):
            lottery_ticket_unstructured(layer, "weight", 5)
        assert int(layer.weight_mask.sum()) == 4

    def test_missing_parameter_name(self):
        with pytest.raises(ValueError, match=r"name must be a parameter of Linear.*got 'wieght'"):
            lottery_ticket_unstructured(nn.Linear(2, 2), "wieght", 0.2)

    def test_module_type(self):
        with pytest.raises(TypeError, match="module must be an nn.Module, got Tensor"):
            lottery_ticket_unstructured(torch.ones(2), "weight", 0.2)


class TestPrunable:
    def test_module_order_and_types(self):
        model = _convnet()
        pairs = prunable(model)
        assert [type(m) for m, _ in pairs] == [nn.Conv2d, nn.Linear, nn.Linear]
        assert all(name == "weight" for _, name in pairs)

    def test_exclude_by_name_module_and_prefix(self):
        model = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), nn.Linear(2, 2))
        assert [m for m, _ in prunable(model, exclude=["0"])] == [model[1]]
        assert [m for m, _ in prunable(model, exclude=[model[1]])] == [model[0][0], model[0][1]]
        assert [m for m, _ in prunable(model, exclude="0.1")] == [model[0][0], model[1]]

    def test_exclude_unknown(self):
        with pytest.raises(ValueError, match=r"exclude names a module that is not in the model, got 'fc9'"):
            prunable(_mlp(), exclude=["fc9"])
        with pytest.raises(ValueError, match="not part of the model"):
            prunable(_mlp(), exclude=[nn.Linear(1, 1)])
        with pytest.raises(TypeError, match="exclude must hold module names, modules or module types, got 3"):
            prunable(_mlp(), exclude=[3])
        with pytest.raises(TypeError, match="model must be an nn.Module"):
            prunable("model")

    def test_a_model_with_nothing_to_prune_is_refused(self):
        model = nn.Sequential(nn.ReLU(), nn.BatchNorm1d(4))
        with pytest.raises(ValueError) as error:
            prunable(model)
        message = str(error.value)
        assert message.startswith("prunable(): model must have a layer to prune (nn.Linear, nn.Conv1d,")
        assert "got a Sequential with nothing to prune (its modules: ['BatchNorm1d', 'ReLU', 'Sequential'])" in message
        assert "LotteryTicket.apply" in message

    def test_excluding_every_layer_gives_an_empty_list(self):
        model = _mlp()
        assert prunable(model, exclude=[""]) == []
        assert prunable(model, exclude=["0", "2"]) == []


class TestLayerwise:
    def test_rates_by_type_and_output(self):
        model = _convnet()
        used = prune_layerwise(model, PruningRates(conv=0.1, linear=0.2))
        assert used == {"0": 0.1, "3": 0.2, "4": 0.1}
        assert int(model[0].weight_mask.sum()) == 36 - round(0.1 * 36)
        assert int(model[3].weight_mask.sum()) == 2304 - round(0.2 * 2304)
        assert int(model[4].weight_mask.sum()) == 48 - round(0.1 * 48)

    def test_exact_counts_over_rounds_per_layer(self):
        model = _convnet()
        rates = PruningRates(conv=0.15, linear=0.2, output=0.1)
        totals = [m.weight.numel() for m, _ in prunable(model)]
        for rounds in range(1, 6):
            prune_layerwise(model, rates)
            got = [int(m.weight_mask.sum()) for m, _ in prunable(model)]
            assert got == [
                _expected_remaining(totals[0], 0.15, rounds),
                _expected_remaining(totals[1], 0.2, rounds),
                _expected_remaining(totals[2], 0.1, rounds),
            ]

    def test_rates_by_name_and_pattern(self):
        model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 10), nn.Linear(10, 10))
        used = prune_layerwise(model, PruningRates(by_name={"0": 0.5, "[12]": 0.3}))
        assert used == {"0": 0.5, "1": 0.3, "2": 0.3}

    def test_exclude_and_float_rate(self):
        model = _mlp()
        used = prune_layerwise(model, 0.5, exclude=["2"])
        assert used == {"0": 0.5}
        assert not hasattr(model[2], "weight_mask")

    def test_errors(self):
        with pytest.raises(ValueError, match=r"by_name key 'fc' matches no prunable layer"):
            prune_layerwise(_mlp(), PruningRates(by_name={"fc": 0.2}))
        with pytest.raises(ValueError, match=r"PruningRates\(\): conv must be a float in \[0, 1\], got 2"):
            PruningRates(conv=2)
        with pytest.raises(TypeError, match="rates must be a PruningRates or a float"):
            prune_layerwise(_mlp(), "0.2")

    def test_a_model_with_nothing_to_prune_is_refused_and_excluding_all_prunes_nothing(self):
        with pytest.raises(ValueError, match=r"^prune_layerwise\(\): model must have a layer to prune .*got a "
                           r"ReLU with nothing to prune \(its modules: \['ReLU'\]\)"):
            prune_layerwise(nn.ReLU(), 0.2)
        model = _mlp()
        assert prune_layerwise(model, 0.2, exclude=["0", "2"]) == {}
        assert not prune.is_pruned(model)

    def test_one_hook_per_layer_after_many_rounds(self):
        model = _mlp()
        for _ in range(4):
            prune_layerwise(model, 0.2)
        for module, _ in prunable(model):
            hooks = [h for h in module._forward_pre_hooks.values() if isinstance(h, prune.BasePruningMethod)]
            assert len(hooks) == 1


def test_sparsity_after_global_round():
    model = lth_prune.models.get("lenet300_100", input_shape=(1, 8, 8))
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.2)
    total = sum(m.weight.numel() for m, _ in prunable(model))
    assert lth_prune.sparsity(model) == round(0.2 * total) / total


def test_layer_pruned_alone_can_be_deep_copied():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 2))
    lottery_ticket_unstructured(model[0], "weight", amount=0.5)
    hook = LotteryTicket.apply(model[0], "weight", amount=0.5)
    assert [h for h in model[0]._forward_pre_hooks.values()] == [hook]
    assert int(model[0].weight_mask.sum()) == 25
    clone = copy.deepcopy(model)
    x = torch.randn(3, 10)
    assert torch.equal(clone(x), model(x))
    assert torch.equal(clone[0].weight_mask, model[0].weight_mask)


def _round_trips():
    def pickled(model):
        return pickle.loads(pickle.dumps(model))

    def saved(model):
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        return torch.load(buffer, weights_only=False)

    def state_dict(model):
        fresh = _mlp(seed=5)
        lth_prune.load_pruned_state_dict(fresh, model.state_dict())
        return fresh

    return {"deepcopy": copy.deepcopy, "pickle": pickled, "torch.save": saved, "state_dict": state_dict}


ROUND_TRIPS = _round_trips()


@pytest.mark.parametrize("after_forward", [False, True], ids=["at-once", "after-a-forward"])
@pytest.mark.parametrize("round_trip", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_a_globally_pruned_model_without_rewind_hooks_survives_round_trips(round_trip, after_forward, device):
    model = _mlp().to(device)
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.2)
    x = torch.randn(3, 20, device=device)
    if after_forward:
        model(x).sum().backward()  # weight is a non-leaf again, computed by lth_prune's hook
    duplicate = round_trip(model).to(device)
    assert prune.is_pruned(duplicate)
    masks = lth_prune.get_masks(model)
    assert masks.keys() == lth_prune.get_masks(duplicate).keys() == {"0.weight", "2.weight"}
    for key, mask in masks.items():
        assert torch.equal(lth_prune.get_masks(duplicate)[key], mask)
    for original, copied in zip(model, duplicate):
        if isinstance(original, nn.Linear):
            assert torch.equal(copied.weight_orig, original.weight_orig)
            assert torch.equal(copied.weight, original.weight)
    assert torch.equal(duplicate(x), model(x))


def test_prunable_leaves_one_hook_that_collapses_torchs_at_the_next_forward():
    model = _mlp()
    for _ in range(3):
        prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.2)
    model(torch.randn(2, 20))
    for module, _ in prunable(model):
        kinds = [type(hook).__name__ for hook in module._forward_pre_hooks.values()]
        assert kinds == ["LayerHook", "AppliedMask"]


class TestTieBreak:
    """Ties go by position unless ``tie_break`` gives a seed for a random order among equal scores."""

    def test_a_seed_prunes_the_exact_count_the_same_way_each_time(self):
        t, default = torch.ones(100), torch.ones(100)
        masks = {seed: LotteryTicket(amount=30, tie_break=seed).compute_mask(t, default) for seed in (0, 1)}
        assert [int(mask.sum()) for mask in masks.values()] == [70, 70]
        assert torch.equal(LotteryTicket(amount=30, tie_break=0).compute_mask(t, default), masks[0])
        assert not torch.equal(masks[0], masks[1])
        assert masks[0][:30].sum() > 0  # not the first thirty, as by position
        assert torch.equal(LotteryTicket(amount=30).compute_mask(t, default)[:30], torch.zeros(30))

    def test_only_tied_entries_at_the_cut_are_drawn(self):
        t = torch.tensor([0.1, 0.5, -0.5, 0.5, 0.5, 0.9, -0.2, float("nan")])
        default = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
        for seed in range(20):
            mask = LotteryTicket(amount=4, tie_break=seed).compute_mask(t, default)
            # 0.1 and -0.2 always go, 0.9 and NaN always stay, the pruned 0.5 stays pruned,
            # and two of the three unpruned |0.5| go.
            assert mask[[0, 6]].tolist() == [0.0, 0.0] and mask[[5, 7]].tolist() == [1.0, 1.0]
            assert mask[4] == 0 and int(mask[[1, 2, 3]].sum()) == 1
        drawn = {tuple(LotteryTicket(amount=4, tie_break=seed).compute_mask(t, default).tolist()) for seed in range(20)}
        assert len(drawn) == 3
        assert LotteryTicket(amount=4).compute_mask(t, default).tolist() == [0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]

    @given(
        values=st.lists(st.integers(-2, 2), min_size=1, max_size=120),
        amount=st.floats(0.0, 1.0),
        rounds=st.integers(1, 4),
        seed=st.integers(0, 2**32),
    )
    @settings(max_examples=60, deadline=None)
    def test_counts_exact_masks_monotone_and_the_same_scores_pruned_as_by_position(self, values, amount, rounds, seed):
        t = torch.tensor(values, dtype=torch.float32)
        seeded, positional = torch.ones_like(t), torch.ones_like(t)
        for _ in range(rounds):
            remaining = int(seeded.sum())
            new = LotteryTicket(amount, tie_break=seed).compute_mask(t, seeded)
            assert int(new.sum()) == remaining - round(amount * remaining)
            assert bool((new <= seeded).all())
            seeded, positional = new, LotteryTicket(amount).compute_mask(t, positional)
            # Which of the equal magnitudes go differs; how many of each magnitude go does not.
            assert sorted(t[seeded == 1].abs().tolist()) == sorted(t[positional == 1].abs().tolist())

    def test_through_global_unstructured_apply_and_the_functional_twin(self):
        def constant(layer):
            with torch.no_grad():
                layer.weight.fill_(0.5)
            return layer

        first, second = constant(nn.Linear(10, 10)), constant(nn.Linear(10, 10))
        prune.global_unstructured([(first, "weight")], pruning_method=LotteryTicket, amount=0.2, tie_break=3)
        LotteryTicket.apply(second, "weight", amount=0.2, tie_break=3)
        twin = lottery_ticket_unstructured(constant(nn.Linear(10, 10)), "weight", 0.2, tie_break=3)
        assert int(first.weight_mask.sum()) == 80
        assert torch.equal(first.weight_mask, second.weight_mask) and torch.equal(first.weight_mask, twin.weight_mask)
        assert first.weight_mask[:2].sum() > 0  # not the first two rows, as by position
        LotteryTicket.apply(second, "weight", amount=0.5, tie_break=4)  # a second round, another seed
        assert int(second.weight_mask.sum()) == 40 and bool((second.weight_mask <= first.weight_mask).all())

    def test_constant_init_lenet_300_100_keeps_its_hidden_units_with_a_random_tie_break(self):
        """By position, the ties of a constant initialization remove whole rows: 67 of 300 units."""

        def disconnected(**tie_break):
            net = lth_prune.models.LeNet300_100()
            for layer, _ in prunable(net):
                nn.init.constant_(layer.weight, 0.05)
            prune.global_unstructured(prunable(net), pruning_method=LotteryTicket, amount=0.2, **tie_break)
            first = net.classifier[0]
            assert int(sum(layer.weight_mask.sum() for layer, _ in prunable(net))) == 266200 - 53240
            return int((first.weight_mask.sum(1) == 0).sum())

        assert disconnected() == 67
        assert disconnected(tie_break=0) == 0

    def test_the_same_mask_on_any_device(self, device):
        t = torch.ones(1000)
        on_cpu = LotteryTicket(amount=300, tie_break=7).compute_mask(t, torch.ones(1000))
        there = LotteryTicket(amount=300, tie_break=7).compute_mask(t.to(device), torch.ones(1000, device=device))
        assert torch.equal(there.cpu(), on_cpu)

    @pytest.mark.parametrize("tie_break, error, text", [
        (-1, ValueError, r"LotteryTicket\(\): tie_break must be None \(ties by position\) or a seed in \[0, 2\*\*64\), got -1\."),
        (2**64, ValueError, r"tie_break must be None \(ties by position\) or a seed in \[0, 2\*\*64\), got 18446744073709551616\."),
        (0.5, TypeError, r"LotteryTicket\(\): tie_break must be None \(ties by position\) or an int seed, got 0.5 of type float\."),
        (True, TypeError, r"tie_break must be None \(ties by position\) or an int seed, got True of type bool\."),
    ])
    def test_bad_tie_breaks_are_refused(self, tie_break, error, text):
        with pytest.raises(error, match=text):
            LotteryTicket(amount=0.2, tie_break=tie_break)
        layer = nn.Linear(3, 3)
        with pytest.raises(error, match=text.replace("LotteryTicket\\(\\)", "LotteryTicket.apply\\(\\)")):
            LotteryTicket.apply(layer, "weight", amount=0.2, tie_break=tie_break)
        assert not prune.is_pruned(layer)
