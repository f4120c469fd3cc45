"""The one registry type (lth_prune.registry) and the extension points that use it."""
from __future__ import annotations

import pytest

from lth_prune import imp
from lth_prune.criteria import CRITERIA
from lth_prune.data import DATASETS
from lth_prune.imp.branches import BRANCHES
from lth_prune.imp.rewinding import REWIND_POLICIES
from lth_prune.imp.searches import METHODS
from lth_prune.models import MODELS
from lth_prune.registry import Entry, Registry


def test_register_get_names_title_and_help():
    colours = Registry("colour")
    colours.register("red", 1, title="Red", help="warm")
    assert colours.register("blue", 2) == 2  # returns what it registers
    assert colours.names() == ["red", "blue"] and list(colours) == ["red", "blue"] and len(colours) == 2
    assert colours.get("red") == 1 and colours.entry("red") == Entry("red", 1, "Red", "warm")
    assert colours.title("blue") == "blue" and colours.title("never registered") == "never registered"
    assert "red" in colours and "green" not in colours and 3 not in colours


def test_as_a_decorator_and_by_the_values_own_name():
    things = Registry("thing")

    @things.register("made", help="a function")
    def made() -> str:
        return "made"

    class Named:
        name = "named"

    assert things.register(title="Named one")(Named) is Named
    assert things.names() == ["made", "named"] and things.get("made") is made and things.title("named") == "Named one"


def test_an_unknown_name_lists_the_valid_ones_and_names_the_caller():
    numbers = Registry("number")
    numbers.register("one", 1)
    with pytest.raises(ValueError, match=r"^number must be one of \['one'\], got 'two'\.$"):
        numbers.get("two")
    with pytest.raises(ValueError, match=r"^ExperimentConfig: number must be one of \['one'\], got None\.$"):
        numbers.entry(None, caller="ExperimentConfig")  # type: ignore[arg-type]


def test_duplicates_empty_names_and_wrong_values_are_refused():
    numbers = Registry("number", normalize=True, accepts=(lambda value: isinstance(value, int), "an int"))
    numbers.register("Big-One", 1)
    for taken in ("Big-One", "big_one", "BIGONE"):
        with pytest.raises(ValueError, match=rf"number registry: name must be new, got '{taken}', which is taken by 'Big-One'"):
            numbers.register(taken, 2)
    with pytest.raises(ValueError, match="number registry: name must not be empty, got '-_'"):
        numbers.register("-_", 3)
    with pytest.raises(TypeError, match="number registry: name must be a str or None, got int"):
        numbers.register(4, 4)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="number registry: name must be a str, got NoneType"):
        numbers.register(value=5)  # no name given, and the value has none
    with pytest.raises(TypeError, match=r"number registry: 'half' must be an int, got 0\.5"):
        numbers.register("half", 0.5)
    assert numbers.names() == ["Big-One"]


def test_normalized_lookups_give_the_registered_spelling():
    models = Registry("model", normalize=True)
    models.register("lenet300_100", "builder")
    assert models.get("LeNet-300-100") == "builder" and models.canonical("LENET300100") == "lenet300_100"
    assert Registry("plain").register("Mixed", 1) == 1


def test_a_followed_registry_is_read_live():
    criteria, methods = Registry("criterion"), Registry("method")
    methods.register("imp", "iterative")
    methods.follow(criteria, lambda criterion: f"at init by {criterion}")
    criteria.register("snip", "SNIP", title="SNIP!", help="sensitivity")
    assert methods.names() == ["imp", "snip"]
    assert methods.entry("snip") == Entry("snip", "at init by SNIP", "SNIP!", "sensitivity")
    criteria.register("later", "Later")
    assert "later" in methods and methods.get("later") == "at init by Later"
    with pytest.raises(ValueError, match="name must be new, got 'snip'"):
        methods.register("snip", "again")


def test_every_extension_point_is_a_registry_with_its_built_ins():
    assert all(isinstance(registry, Registry) for registry in (MODELS, DATASETS, CRITERIA, METHODS, BRANCHES, REWIND_POLICIES))
    assert set(MODELS.names()) >= {"network", "conv2", "conv4", "conv6", "lenet300_100", "resnet20", "vgg16"}
    assert set(DATASETS.names()) >= {"digits", "mnist", "fashion-mnist", "cifar10", "synthetic"}
    assert CRITERIA.names()[:5] == ["snip", "grasp", "synflow", "magnitude-init", "random"]
    assert METHODS.names()[:8] == ["gmp", "imp", "transfer", "snip", "grasp", "synflow", "magnitude-init", "random"]
    assert BRANCHES.names()[:4] == ["random_reinit", "random_pruning", "inverted_scores", "stability"]
    assert REWIND_POLICIES.names()[:4] == ["init", "step", "lr", "finetune"]
    assert imp.METHODS is METHODS and imp.BRANCHES is BRANCHES and imp.REWIND_POLICIES is REWIND_POLICIES
    # Titles live with the entries; tables and figures ask for them.
    assert [MODELS.title(name) for name in ("conv2", "lenet300_100", "resnet20")] == ["Conv-2", "LeNet-300-100", "ResNet-20"]
    assert DATASETS.title("fashion-mnist") == "Fashion-MNIST" and METHODS.title("snip") == "SNIP"
    assert BRANCHES.title("stability") == "instability"
    every = [(registry, name) for registry in (MODELS, DATASETS, METHODS, BRANCHES, REWIND_POLICIES) for name in registry]
    assert not [f"{registry.kind} {name}" for registry, name in every if not registry.entry(name).help]
