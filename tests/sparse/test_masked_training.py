"""masked_training: dense-cost training of a pruned model, pruned weights exactly zero."""
from __future__ import annotations

import copy
import importlib
import io
import pickle

import pytest
import torch
import torch.nn.utils.prune as prune
from torch import nn

import lth_prune
from lth_prune import LotteryTicket, _reparam, masked_training, prunable
from lth_prune.sparse import _native

# The module itself: the package's attribute of that name is the function it re-exports.
masked_training_module = importlib.import_module("lth_prune.sparse.masked_training")


def _pruned_net(seed: int = 0, amount: float = 0.6) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 32),
                          nn.ReLU(), nn.Linear(32, 3))
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=amount)
    return model


def _steps(model: nn.Module, optimizer: torch.optim.Optimizer, count: int, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(count):
        x = torch.randn(8, 1, 8, 8, generator=generator)
        y = torch.randint(0, 3, (8,), generator=generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


OPTIMIZERS = {
    "sgd-momentum-wd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-2, nesterov=True),
    "adam-l2": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-2, amsgrad=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
}


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_same_trajectory_as_torch_prune_and_zero_stays_zero(make_optimizer):
    hooked, fast = _pruned_net(), _pruned_net()
    hooked_opt, fast_opt = make_optimizer(hooked.parameters()), make_optimizer(fast.parameters())
    _steps(hooked, hooked_opt, 5)
    with masked_training(fast, fast_opt):
        _steps(fast, fast_opt, 5)
        assert not prune.is_pruned(fast)
        for key, mask in lth_prune.get_masks(fast).items():
            weight = fast.get_parameter(key)
            assert bool((weight[~mask] == 0).all())
    assert prune.is_pruned(fast)
    for (a, _), (b, _) in zip(prunable(hooked), prunable(fast)):
        assert torch.equal(a.weight_mask, b.weight_mask)
        assert torch.allclose(a.weight, b.weight, atol=1e-6, rtol=1e-5)
        assert bool((b.weight[b.weight_mask == 0] == 0).all())


def test_round_trip_keeps_masks_weights_and_parameter_identity():
    model = _pruned_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    masks = lth_prune.get_masks(model)
    weights = {k: model.get_submodule(k.rsplit(".", 1)[0]).weight.detach().clone() for k in masks}
    ids = {id(p) for p in model.parameters()}
    with masked_training(model, optimizer):
        assert {id(p) for p in model.parameters()} == ids
        assert not prune.is_pruned(model)
        assert lth_prune.sparsity(model) == pytest.approx(0.6, abs=1e-3)
    assert prune.is_pruned(model)
    for key, mask in lth_prune.get_masks(model).items():
        assert torch.equal(mask, masks[key])
        module = model.get_submodule(key.rsplit(".", 1)[0])
        assert torch.equal(module.weight, weights[key])
        assert torch.equal(module.weight, module.weight_orig * module.weight_mask)
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.1)
    copy.deepcopy(model)


def test_stale_momentum_does_not_move_pruned_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _steps_linear(model, optimizer, 3)  # dense training fills the momentum buffers
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.5)
    with masked_training(model, optimizer):
        _steps_linear(model, optimizer, 3)
        for module in model:
            assert bool((module.weight[lth_prune.get_masks(module)["weight"] == 0] == 0).all())


class _Jitter(torch.optim.Optimizer):
    """An optimizer that moves every entry, zero gradient or not."""

    def __init__(self, params):
        super().__init__(params, {})

    def step(self, closure=None):
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    p.add_(0.01)


def test_any_optimizer_keeps_zeros():
    model = _pruned_net()
    optimizer = _Jitter(model.parameters())
    with masked_training(model, optimizer):
        _steps(model, optimizer, 2)
        layer = model[3]
        mask = lth_prune.get_masks(layer)["weight"]
        assert bool((layer.weight[~mask] == 0).all())
        assert bool((layer.bias != 0).all())


def test_rewinding_inside_keeps_masks():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 2))
    rewinder = lth_prune.register_rewind_hooks(model)
    start = {k: v.clone() for k, v in rewinder.rewind_point.items()}
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    with masked_training(model, optimizer):
        _steps_linear(model, optimizer, 2)
        rewinder.rewind()
        for index, module in enumerate(model):
            mask = lth_prune.get_masks(module)["weight"]
            assert bool((module.weight[~mask] == 0).all())
            assert torch.equal(module.weight[mask], start[f"{index}.weight"][mask])


def test_late_rewind_point_captured_inside():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 2))
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    rewinder = lth_prune.register_rewind_hooks(model, at_step=2, optimizer=optimizer)
    with masked_training(model, optimizer):
        _steps_linear(model, optimizer, 2)
        after_two = {k: v.clone() for k, v in model.state_dict().items()}
        _steps_linear(model, optimizer, 2)
    rewinder.rewind()
    for index, module in enumerate(model):
        assert torch.equal(module.weight, after_two[f"{index}.weight"])


def test_parameter_and_mask_memory_is_at_most_1_3x_dense():
    model = _pruned_net()
    dense_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    with masked_training(model, torch.optim.SGD(model.parameters(), lr=0.1)) as context:
        held = sum(p.numel() * p.element_size() for p in model.parameters())
        held += sum(b.numel() * b.element_size() for b in model.buffers())
        held += sum(e.keep.numel() * e.keep.element_size() for e in context._converted)
    assert held <= 1.3 * dense_bytes


def test_errors():
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer, got NoneType"):
        masked_training(nn.Linear(2, 2), None)
    model = _pruned_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match="prune outside masked_training"):
        with masked_training(model, optimizer):
            LotteryTicket.apply(model[3], "weight", amount=0.1)


def test_an_optimizer_over_none_of_the_models_parameters_is_refused():
    model = _pruned_net()
    other = torch.optim.SGD(nn.Linear(3, 3).parameters(), lr=0.1)
    with pytest.raises(ValueError) as error:
        masked_training(model, other)
    message = str(error.value)
    assert message.startswith("masked_training(): optimizer must hold parameters of model, got an optimizer over 2 other")
    assert "misses all 6 of the model's ('0.bias', '0.weight_orig', '3.bias' and 3 more)" in message
    assert "model.parameters()" in message


def test_an_optimizer_over_some_of_the_models_parameters_is_accepted():
    model = _pruned_net()
    optimizer = torch.optim.SGD(model[5].parameters(), lr=0.1)  # the other layers are frozen
    with masked_training(model, optimizer):
        _steps(model, optimizer, 1)
    assert prune.is_pruned(model)


def _steps_linear(model: nn.Module, optimizer: torch.optim.Optimizer, count: int) -> None:
    generator = torch.Generator().manual_seed(2)
    for _ in range(count):
        optimizer.zero_grad()
        model(torch.randn(4, 10, generator=generator)).pow(2).sum().backward()
        optimizer.step()


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_sparse_kernels_follow_the_dense_trajectory(make_optimizer, monkeypatch):
    monkeypatch.setattr(masked_training_module, "_SPARSE_MIN_WEIGHTS", 1)  # these layers are small
    dense, sparse = _pruned_net(amount=0.9), _pruned_net(amount=0.9)
    dense_opt, sparse_opt = make_optimizer(dense.parameters()), make_optimizer(sparse.parameters())
    with masked_training(dense, dense_opt):
        _steps(dense, dense_opt, 4)
    with masked_training(sparse, sparse_opt, sparse_density=1.0):
        assert "forward" in vars(sparse[3]) and "forward" in vars(sparse[5])
        _steps(sparse, sparse_opt, 4)
    assert "forward" not in vars(sparse[3])
    for (a, _), (b, _) in zip(prunable(dense), prunable(sparse)):
        assert torch.equal(a.weight_mask, b.weight_mask)
        assert torch.allclose(a.weight, b.weight, atol=1e-5, rtol=1e-4)
        assert bool((b.weight[b.weight_mask == 0] == 0).all())


def test_sparse_density_is_validated():
    with pytest.raises(ValueError, match=r"sparse_density must be a float in \[0, 1\], got 2"):
        masked_training(nn.Linear(2, 2), torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), sparse_density=2)


@pytest.mark.parametrize("path", ["c-kernel", "torch-slices"])
def test_gradient_masking_paths_give_the_same_training(monkeypatch, path):
    # Against torch's mul_ over whole gradients: the C kernel, or mul_ in slices of 7 entries
    # that split the 256 x 32 weight unevenly. The trajectory must not change by a bit.
    if path == "c-kernel" and not _native.native_available():
        pytest.skip("no C compiler here: the C kernel is not built")
    whole, sliced = _pruned_net(), _pruned_net()
    whole_opt = torch.optim.SGD(whole.parameters(), lr=0.05, momentum=0.9)
    sliced_opt = torch.optim.SGD(sliced.parameters(), lr=0.05, momentum=0.9)
    with monkeypatch.context() as patched:
        patched.setattr(_native, "_kernel_for", lambda values, keep: None)
        patched.setattr(_native, "_MASK_SLICE", 1 << 30)
        with masked_training(whole, whole_opt):
            _steps(whole, whole_opt, 3)
    if path == "torch-slices":
        monkeypatch.setattr(_native, "_kernel_for", lambda values, keep: None)
        monkeypatch.setattr(_native, "_MASK_SLICE", 7)
    with masked_training(sliced, sliced_opt):
        _steps(sliced, sliced_opt, 3)
        keep = lth_prune.get_masks(sliced[3])["weight"]
        assert sliced[3].weight.grad is not None
        assert int(torch.count_nonzero(sliced[3].weight.grad[~keep])) == 0
    for (a, _), (b, _) in zip(prunable(whole), prunable(sliced)):
        assert torch.equal(a.weight, b.weight)


def test_small_linear_layers_stay_dense_under_sparse_density():
    model = _pruned_net(amount=0.95)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with masked_training(model, optimizer, sparse_density=1.0):
        assert "forward" not in vars(model[3]), "a 256 x 32 layer is below the size that pays"
        _steps(model, optimizer, 1)
        keep = lth_prune.get_masks(model[3])["weight"]
        assert int(torch.count_nonzero(model[3].weight.grad[~keep])) == 0


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("optimizer_class", [torch.optim.Adam, torch.optim.AdamW])
def test_adam_second_moments_of_pruned_entries_are_positive_and_weights_stay_zero(optimizer_class, amsgrad):
    hooked, fast = _pruned_net(), _pruned_net()
    hooked_opt = optimizer_class(hooked.parameters(), lr=1e-2, weight_decay=1e-2, amsgrad=amsgrad)
    fast_opt = optimizer_class(fast.parameters(), lr=1e-2, weight_decay=1e-2, amsgrad=amsgrad)
    _steps(hooked, hooked_opt, 6)
    with masked_training(fast, fast_opt):
        _steps(fast, fast_opt, 6)
        for key, keep in lth_prune.get_masks(fast).items():
            parameter = fast.get_parameter(key)
            state = fast_opt.state[parameter]
            keys = ["exp_avg_sq", "max_exp_avg_sq"] if amsgrad else ["exp_avg_sq"]
            for name in keys:
                # Seeded with 1 after the first step, then decayed by beta2 each step.
                assert bool((state[name][~keep] >= 0.999**5).all()), f"{name} of {key}"
            assert bool((state["exp_avg"][~keep] == 0).all())
            assert bool((parameter[~keep] == 0).all())
    for (a, _), (b, _) in zip(prunable(hooked), prunable(fast)):
        assert torch.allclose(a.weight, b.weight, atol=1e-6, rtol=1e-5)


def test_adam_state_from_before_the_context_is_seeded_on_entry():
    model = _pruned_net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    _steps(model, optimizer, 2)  # state exists (torch.nn.utils.prune path: pruned moments are 0)
    with masked_training(model, optimizer) as context:
        assert context._seed_hook is None, "nothing left to seed after the first step"
        for key, keep in lth_prune.get_masks(model).items():
            assert bool((optimizer.state[model.get_parameter(key)]["exp_avg_sq"][~keep] == 1).all())


def test_adam_seeding_waits_only_for_the_parameters_it_optimizes():
    model = _pruned_net()
    optimizer = torch.optim.Adam(model[3].parameters(), lr=1e-2)  # the conv and last layer are frozen
    with masked_training(model, optimizer) as context:
        assert [entry.module for entry in context._unseeded] == [model[3]]
        _steps(model, optimizer, 1)
        assert context._unseeded == []


# --------------------------------------------------------------------------- NaN and inf


class _AddToGradient(torch.autograd.Function):
    """Identity forward; adds ``poison`` (NaN, inf or 0 per entry) to the gradient going back."""

    @staticmethod
    def forward(ctx, weight, poison):
        ctx.save_for_backward(poison)
        return weight.clone()

    @staticmethod
    def backward(ctx, grad):
        (poison,) = ctx.saved_tensors
        return grad + poison.to(grad.device), None


class _PoisonedLinear(nn.Linear):
    """A linear layer whose weight gradient holds NaN and inf wherever ``poison`` does."""

    def forward(self, x):
        return nn.functional.linear(x, _AddToGradient.apply(self.weight, self.poison), self.bias)


POISON_OPTIMIZERS = {
    "sgd-momentum-wd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-2, nesterov=True),
    "adam-amsgrad-l2": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-2, amsgrad=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    "rmsprop-centered": lambda p: torch.optim.RMSprop(p, lr=1e-2, momentum=0.9, weight_decay=1e-2, centered=True),
    "lbfgs": lambda p: torch.optim.LBFGS(p, lr=0.1, max_iter=3, history_size=3),
}


def _poisoned_net(device: torch.device, at: str) -> tuple[nn.Sequential, torch.Tensor]:
    """A pruned net whose first layer's gradient holds NaN, +inf and -inf at pruned entries
    (``at="pruned"``) or at pruned and kept ones (``at="pruned-and-kept"``); and its keep mask."""
    torch.manual_seed(0)
    first = _PoisonedLinear(6, 8)
    model = nn.Sequential(first, nn.ReLU(), nn.Linear(8, 3))
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.5)
    lth_prune.collapse_masks(model)
    keep = first.weight_mask.bool()
    poison = torch.zeros(8, 6)
    pruned, kept = (~keep).nonzero(), keep.nonzero()
    specials = [float("nan"), float("inf"), -float("inf")]
    for index, value in enumerate(specials):
        poison[tuple(pruned[index])] = value
        if at == "pruned-and-kept":
            poison[tuple(kept[index])] = value
    first.poison = poison
    return model.to(device), keep.to(device)


def _poisoned_steps(model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    generator = torch.Generator().manual_seed(3)
    for _ in range(3):
        x = torch.randn(5, 6, generator=generator).to(device)

        def closure():
            optimizer.zero_grad()
            loss = model(x).pow(2).mean()
            loss.backward()
            return loss

        optimizer.step(closure)


@pytest.mark.parametrize("at", ["pruned", "pruned-and-kept"])
@pytest.mark.parametrize("make_optimizer", POISON_OPTIMIZERS.values(), ids=POISON_OPTIMIZERS.keys())
@pytest.mark.parametrize("masking", ["c-kernel", "torch-fallback"])
def test_nan_and_inf_gradients_never_move_a_pruned_weight_inside_masked_training(
    make_optimizer, at, masking, device, monkeypatch
):
    if masking == "c-kernel" and (device.type != "cpu" or not _native.native_available()):
        pytest.skip("the C kernel runs on CPU tensors, where a C compiler is at hand")
    if masking == "torch-fallback":
        monkeypatch.setattr(_native, "_kernel_for", lambda values, keep: None)
    model, keep = _poisoned_net(device, at)
    layer = model[0]
    optimizer = make_optimizer(model.parameters())
    with masked_training(model, optimizer):
        _poisoned_steps(model, optimizer, device)
        assert bool((layer.weight.grad[~keep] == 0).all()), "a pruned entry's gradient is not 0"
        assert bool((layer.weight[~keep] == 0).all()), layer.weight[~keep]
        if at == "pruned":
            assert bool(layer.weight[keep].isfinite().all())
    assert bool((layer.weight[~keep] == 0).all())
    assert bool((layer.weight_orig[~keep] == 0).all())


@pytest.mark.parametrize("at", ["pruned", "pruned-and-kept"])
@pytest.mark.parametrize("make_optimizer", POISON_OPTIMIZERS.values(), ids=POISON_OPTIMIZERS.keys())
def test_nan_and_inf_gradients_never_reach_a_pruned_weight_under_torchs_hooks(make_optimizer, at, device):
    model, keep = _poisoned_net(device, at)
    layer = model[0]
    optimizer = make_optimizer(model.parameters())
    _poisoned_steps(model, optimizer, device)
    assert bool((layer.weight_orig.grad[~keep] == 0).all()), "a pruned entry's gradient is not 0"
    model(torch.randn(2, 6, device=device))  # the hook recomputes weight
    assert bool((layer.weight[~keep] == 0).all()), layer.weight[~keep]
    if at == "pruned":
        assert bool(layer.weight.isfinite().all())
        assert bool(model(torch.randn(2, 6, device=device)).isfinite().all())


def test_stale_nan_momentum_at_pruned_entries_does_not_move_them(device):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 2)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _steps_linear(model, optimizer, 2)
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.5)
    keep = model[0].weight_mask.bool()
    optimizer.state[model[0].weight_orig]["momentum_buffer"][~keep] = float("nan")
    with masked_training(model, optimizer):
        _steps_linear(model, optimizer, 2)
        assert bool((model[0].weight[~keep] == 0).all())
        assert bool(model[0].weight[keep].isfinite().all())


@pytest.mark.parametrize("optimizer_class", [torch.optim.Adam, torch.optim.AdamW])
def test_stale_nan_adam_moments_at_pruned_entries_are_seeded_and_do_not_move_them(optimizer_class, device):
    model = _pruned_net().to(device)
    optimizer = optimizer_class(model.parameters(), lr=1e-2, amsgrad=True)
    layer = model[3]
    keep = layer.weight_mask.bool()
    optimizer.zero_grad()
    model(torch.randn(2, 1, 8, 8, device=device)).sum().backward()
    optimizer.step()
    state = optimizer.state[layer.weight_orig]
    for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        state[key][~keep] = float("nan")
    with masked_training(model, optimizer):
        for key in ("exp_avg_sq", "max_exp_avg_sq"):
            assert bool((state[key][~keep] == 1).all()), key
        assert bool((state["exp_avg"][~keep] == 0).all())
        optimizer.zero_grad()
        model(torch.randn(2, 1, 8, 8, device=device)).sum().backward()
        optimizer.step()
        assert bool((layer.weight[~keep] == 0).all())
        assert bool(layer.weight[keep].isfinite().all())


def test_a_nan_at_a_pruned_entry_of_weight_orig_is_zero_inside_masked_training(device):
    model = _pruned_net().to(device)
    layer = model[3]
    keep = layer.weight_mask.bool()
    with torch.no_grad():
        layer.weight_orig[~keep] = float("nan")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with masked_training(model, optimizer):
        assert bool((layer.weight[~keep] == 0).all())
        assert bool(model(torch.randn(2, 1, 8, 8, device=device)).isfinite().all())


# --------------------------------------------------------------------------- copies inside the context


def _pickled(model):
    return pickle.loads(pickle.dumps(model))


def _saved(model):
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


COPIES = {"deepcopy": copy.deepcopy, "pickle": _pickled, "torch.save": _saved}


@pytest.mark.parametrize("make_copy", COPIES.values(), ids=COPIES.keys())
def test_a_copy_made_inside_the_context_is_pruned_with_equal_masks_and_weights(make_copy, device):
    model = _pruned_net().to(device)
    masks = lth_prune.get_masks(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(4, 1, 8, 8, device=device)
    with masked_training(model, optimizer):
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
        duplicate = make_copy(model)
        assert prune.is_pruned(duplicate) and not prune.is_pruned(model)
        assert lth_prune.get_masks(duplicate).keys() == masks.keys()
        for key, mask in masks.items():
            assert torch.equal(lth_prune.get_masks(duplicate)[key], mask)
            layer, copied = model.get_submodule(key[:-7]), duplicate.get_submodule(key[:-7])
            assert torch.equal(copied.weight_orig, layer.weight)
            assert torch.equal(copied.weight, layer.weight)
            assert copied.weight_mask.dtype == torch.float32
            assert "__getstate__" not in vars(copied) and _reparam.dense_masks(copied) == {}
        assert torch.equal(duplicate(x), model(x))
        # The context goes on training the original only.
        _steps(model, optimizer, 1)
    assert prune.is_pruned(model) and "__getstate__" not in vars(model[3])
    # The copy trains through torch's hooks, its pruned weights at 0.
    copy_optimizer = torch.optim.SGD(duplicate.parameters(), lr=0.05)
    copy_optimizer.zero_grad()
    duplicate(x).sum().backward()
    copy_optimizer.step()
    duplicate(x)
    assert bool((duplicate[3].weight[duplicate[3].weight_mask == 0] == 0).all())


def test_a_copy_inside_the_context_leaves_the_sparse_kernels_behind(monkeypatch):
    monkeypatch.setattr(masked_training_module, "_SPARSE_MIN_WEIGHTS", 1)
    model = _pruned_net(amount=0.9)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with masked_training(model, optimizer, sparse_density=1.0):
        assert "forward" in vars(model[3])
        duplicate = copy.deepcopy(model)
    assert "forward" not in vars(duplicate[3]) and prune.is_pruned(duplicate)
    x = torch.randn(2, 1, 8, 8)
    assert torch.allclose(duplicate(x), model(x), atol=1e-6)
