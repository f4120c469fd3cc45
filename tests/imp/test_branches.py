"""Branches (lth_prune.imp.branches): the registry and what each built-in branch trains."""
from __future__ import annotations

import pytest
import torch

from lth_prune import masks as masks_module, models
from lth_prune.imp.branches import BRANCHES, Branch, LevelTicket
from lth_prune.imp.branches.random_pruning import random_masks
from lth_prune.imp.rewinding import RewindPoint
from lth_prune.rewind import capture_state

LAYERS = ("classifier.0.weight", "classifier.2.weight", "classifier.4.weight")


def _build(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.get("lenet300_100", num_classes=4, input_shape=(1, 8, 8))


@pytest.fixture
def ticket() -> LevelTicket:
    """A level-2 ticket keeping 30 % of each layer, with a rewind point at step 5."""
    point = RewindPoint(capture_state(_build(0)), 5)
    generator = torch.Generator().manual_seed(1)
    kept = {name: torch.rand(point.state[name].shape, generator=generator) < 0.3 for name in LAYERS}
    return LevelTicket(level=2, seed=0, masks=kept, rewind_point=point, build=_build)


def test_registry_holds_the_built_in_branches_in_order():
    assert BRANCHES.names()[:4] == ["random_reinit", "random_pruning", "inverted_scores", "stability"]
    assert [BRANCHES.title(name) for name in BRANCHES.names()[:4]] == [
        "random reinit", "random pruning", "inverted scores", "instability"]
    assert BRANCHES.get("random_reinit").metrics == ("random_reinit_accuracy",)
    with pytest.raises(ValueError, match=r"branch must be one of \['random_reinit', 'random_pruning'.*\], got 'shuffled'"):
        BRANCHES.get("shuffled")


def test_registering_checks_the_class_and_its_name():
    with pytest.raises(TypeError, match=r"branch registry: 'int' must be a Branch subclass, got <class 'int'>"):
        BRANCHES.register("int", int)
    with pytest.raises(ValueError, match=r"name must be new, got 'random_reinit', which is taken by 'random_reinit'"):
        BRANCHES.register()(type("Again", (Branch,), {"name": "random_reinit"}))
    with pytest.raises(TypeError, match=r"branch registry: name must be a str, got NoneType"):
        BRANCHES.register(value=type("Nameless", (Branch,), {"name": None}))
    with pytest.raises(TypeError, match=r"name must be a str or None, got type; to register a class under its own name"):
        BRANCHES.register(type("Misused", (Branch,), {"name": "misused"}))
    with pytest.raises(ValueError, match=r"Branch: Spaced.name must be a Python identifier \(it prefixes metrics\), got 'a b'"):
        type("Spaced", (Branch,), {"name": "a b"})


def test_random_reinit_keeps_the_masks_on_a_new_initialization(ticket):
    branch = BRANCHES.get("random_reinit")()
    net = branch.network(ticket)
    got = masks_module.get_masks(net)
    assert all(torch.equal(got[name], ticket.masks[name]) for name in LAYERS)
    state = capture_state(net)
    assert not torch.equal(state["classifier.0.weight"], ticket.rewind_point.state["classifier.0.weight"])
    assert branch.start_step(ticket) == 0


def test_random_pruning_keeps_the_counts_and_starts_from_the_whole_rewind_point(ticket):
    branch = BRANCHES.get("random_pruning")()
    net = branch.network(ticket)
    got = masks_module.get_masks(net)
    for name in LAYERS:
        assert int(got[name].sum()) == int(ticket.masks[name].sum())
        assert not torch.equal(got[name], ticket.masks[name])
        weights = net.get_parameter(name.replace("weight", "weight_orig")).detach()
        kept = weights[got[name]]
        # Every kept weight has its rewind-point value: none starts at zero.
        assert torch.equal(kept, ticket.rewind_point.state[name][got[name]]) and int((kept == 0).sum()) == 0
    assert branch.start_step(ticket) == 5  # where the ticket's schedule resumes


def test_a_branch_runs_through_the_trainer_it_is_given(ticket):
    calls = []

    def trainer(net, phase, start):
        calls.append((phase, start, sorted(masks_module.get_masks(net))))
        return {"test_accuracy": 0.25, "test_loss": 1.0}

    assert BRANCHES.get("random_pruning")().run(ticket, trainer) == {"random_pruning_accuracy": 0.25}
    assert calls == [("random_pruning", 5, sorted(LAYERS))]


def test_random_masks_keep_exact_counts_and_differ_by_seed():
    masks = {"w": torch.rand(40, 30) < 0.1, "v": torch.ones(7, dtype=torch.bool)}
    first, second = random_masks(masks, 0), random_masks(masks, 1)
    assert {k: int(v.sum()) for k, v in first.items()} == {k: int(v.sum()) for k, v in masks.items()}
    assert not torch.equal(first["w"], second["w"]) and torch.equal(first["w"], random_masks(masks, 0)["w"])
