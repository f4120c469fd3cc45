"""What the plugin core refuses: one table of bad inputs, the exception each raises, and the words
its message must hold (the function's name, the rule, what was received).

Each row is a call with its own small inputs (models, optimizers, and files in the real on-disk
formats). ``since`` records whether the case already raised this clear error ("kept", the row
keeps it working), raised the right exception with a vaguer message that now names more (the
file, the batch, what was found: "sharpened"), or was a raw, misleading or missing error until
the "bad input and faults" work ("fixed"). The fixes that are behaviour rather than errors -- masks that select, so a NaN
or inf never moves a pruned weight, and copies of pruned models -- are tested where they live
(tests/sparse/test_masked_training.py, tests/test_reparam.py, tests/test_methods.py).
"""
from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as prune
from torch import nn

from lth_prune import (
    LotteryTicket,
    PruningRates,
    load_ticket,
    masked_training,
    prunable,
    prune_layerwise,
    register_rewind_hooks,
    rewind,
    save_ticket,
    set_masks,
)
from lth_prune.data import InMemoryLoader, load_dataset, read_idx
from lth_prune.tickets import read_ticket
from tests.datafiles import write_cifar10


@dataclass(frozen=True)
class Case:
    """One bad input: ``call(tmp_path, device)`` must raise ``error`` with every word in ``words``."""

    name: str
    call: Callable[[Path, torch.device], object]
    error: type[BaseException]
    words: tuple[str, ...]
    since: str  # "kept", "sharpened" or "fixed"


# --------------------------------------------------------------------------- inputs


def _mlp(device: torch.device) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).to(device)


def _pruned(device: torch.device) -> nn.Sequential:
    model = _mlp(device)
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.5)
    return model


def _ticket_bytes(tmp_path: Path) -> bytes:
    model = _mlp(torch.device("cpu"))
    register_rewind_hooks(model)
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.5)
    save_ticket(model, tmp_path / "good.pt")
    return (tmp_path / "good.pt").read_bytes()


def _file(tmp_path: Path, name: str, content: bytes | object) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    return path


def _truncated_ticket(tmp_path: Path) -> Path:
    good = _ticket_bytes(tmp_path)
    return _file(tmp_path, "truncated.pt", good[: len(good) // 2])


def _twice(tmp_path: Path, device: torch.device) -> None:
    model = _pruned(device)
    context = masked_training(model, torch.optim.SGD(model.parameters(), lr=0.1))
    with context:
        context.__enter__()


def _pruned_inside(tmp_path: Path, device: torch.device) -> None:
    model = _pruned(device)
    with masked_training(model, torch.optim.SGD(model.parameters(), lr=0.1)):
        LotteryTicket.apply(model[0], "weight", amount=0.1)


def _late_rewind(tmp_path: Path, device: torch.device) -> None:
    model = _mlp(device)
    rewinder = register_rewind_hooks(model, at_step=3, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    rewinder.rewind()


def _ticket_on_other_shapes(tmp_path: Path, device: torch.device) -> None:
    _ticket_bytes(tmp_path)
    load_ticket(nn.Sequential(nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3)).to(device), tmp_path / "good.pt")


def _cifar10(tmp_path: Path, filename: str, **changes: object) -> None:
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / filename
    with path.open("rb") as handle:
        entry = pickle.load(handle, encoding="latin1")
    entry.update(changes)
    with path.open("wb") as handle:
        pickle.dump(entry, handle)
    with pytest.warns(UserWarning, match="md5 mismatch"):
        load_dataset("cifar10", data_dir=tmp_path)


def _idx(tmp_path: Path, content: bytes) -> None:
    read_idx(_file(tmp_path, "train-images-idx3-ubyte", content))


def _other_optimizer(device: torch.device) -> torch.optim.Optimizer:
    return torch.optim.SGD(nn.Linear(2, 2).to(device).parameters(), lr=0.1)


# --------------------------------------------------------------------------- the table

FIXED = [
    # masked_training
    Case("masked_training-optimizer-over-other-parameters",
         lambda tmp, dev: masked_training(_pruned(dev), _other_optimizer(dev)),
         ValueError, ("masked_training(): optimizer must hold parameters of model", "misses all 4 of the model's",
                      "'0.bias'", "and 1 more", "model.parameters()"), "fixed"),
    # prunable / prune_layerwise on a model with nothing to prune
    Case("prunable-nothing-to-prune", lambda tmp, dev: prunable(nn.Sequential(nn.ReLU(), nn.Dropout())),
         ValueError, ("prunable(): model must have a layer to prune", "nn.Linear, nn.Conv1d", "nn.ConvTranspose3d",
                      "got a Sequential with nothing to prune", "['Dropout', 'ReLU', 'Sequential']"), "fixed"),
    Case("prune_layerwise-nothing-to-prune", lambda tmp, dev: prune_layerwise(nn.BatchNorm1d(3), 0.2),
         ValueError, ("prune_layerwise(): model must have a layer to prune", "got a BatchNorm1d with nothing"), "fixed"),
    # tickets
    Case("load_ticket-truncated", lambda tmp, dev: load_ticket(_mlp(dev), _truncated_ticket(tmp)),
         ValueError, ("load_ticket():", "truncated.pt' must be a ticket saved by save_ticket()",
                      "cannot read (truncated, or not a torch file: RuntimeError: PytorchStreamReader"), "fixed"),
    Case("load_ticket-empty-file", lambda tmp, dev: load_ticket(_mlp(dev), _file(tmp, "empty.pt", b"")),
         ValueError, ("load_ticket():", "empty.pt", "must be a ticket saved by save_ticket()", "truncated"), "fixed"),
    Case("load_ticket-pickled-module", lambda tmp, dev: load_ticket(_mlp(dev), _file(tmp, "module.pt", _mlp(dev))),
         ValueError, ("load_ticket():", "module.pt", "a pickled module or other object"), "fixed"),
    Case("read_ticket-pickled-module", lambda tmp, dev: read_ticket(_file(tmp, "module.pt", nn.Linear(2, 2))),
         ValueError, ("read_ticket():", "module.pt", "a pickled module or other object"), "fixed"),
    Case("read_ticket-garbage", lambda tmp, dev: read_ticket(_file(tmp, "garbage.pt", b"not a torch file" * 4)),
         ValueError, ("read_ticket():", "garbage.pt", "must be a ticket saved by save_ticket()"), "fixed"),
    Case("load_ticket-ticket-without-masks",
         lambda tmp, dev: load_ticket(_mlp(dev), _file(tmp, "partial.pt", {"format": "lth_prune.ticket", "version": 1})),
         ValueError, ("load_ticket():", "partial.pt", "is a damaged ticket", "masks and rewind_point"), "fixed"),
    Case("read_ticket-unknown-version",
         lambda tmp, dev: read_ticket(_file(tmp, "v7.pt", {"format": "lth_prune.ticket", "version": 7, "masks": {},
                                                          "rewind_point": {}, "rewind_step": 0})),
         ValueError, ("read_ticket():", "v7.pt", "format version 1 or 2, got version 7"), "fixed"),
    Case("read_ticket-path-none", lambda tmp, dev: read_ticket(None),
         TypeError, ("read_ticket(): path must be a file name or a binary file object, got NoneType",), "fixed"),
    Case("load_ticket-model-not-a-module", lambda tmp, dev: load_ticket("net", tmp / "t.pt"),
         TypeError, ("load_ticket(): model must be an nn.Module, got str",), "fixed"),
    # data files
    Case("read_idx-implausible-header",
         lambda tmp, dev: _idx(tmp, bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**31, 2**16, 2**16) + bytes(8)),
         ValueError, ("read_idx():", "train-images-idx3-ubyte", "9223372036854775808 bytes", "got 8",
                      "far too short for the shape its header claims"), "fixed"),
    Case("cifar10-label-42", lambda tmp, dev: _cifar10(tmp, "data_batch_2", labels=[42, 0, 1, 2]),
         ValueError, ("load_dataset():", "data_batch_2", "labels in [0, 10)", "got 42 at position 0"), "fixed"),
    Case("cifar10-float64-pixels",
         lambda tmp, dev: _cifar10(tmp, "test_batch", data=np.zeros((6, 3072), dtype=np.float64)),
         ValueError, ("load_dataset():", "test_batch", "must hold uint8 pixels", "got float64"), "fixed"),
    Case("cifar10-float-labels", lambda tmp, dev: _cifar10(tmp, "data_batch_1", labels=[0.5, 1.0, 2.0, 3.0]),
         ValueError, ("load_dataset():", "data_batch_1", "one integer label per image", "float64"), "fixed"),
    Case("cifar10-rows-of-the-wrong-size",
         lambda tmp, dev: _cifar10(tmp, "data_batch_3", data=np.zeros((4, 1024), dtype=np.uint8)),
         ValueError, ("load_dataset():", "data_batch_3", "N rows of 3072 values", "got shape (4, 1024)"), "fixed"),
]

KEPT = [
    # LotteryTicket
    Case("LotteryTicket-amount-above-1", lambda tmp, dev: LotteryTicket(amount=1.5),
         ValueError, ("LotteryTicket(): amount must be a float in [0, 1], got 1.5",), "kept"),
    Case("LotteryTicket-negative-count", lambda tmp, dev: LotteryTicket(amount=-3),
         ValueError, ("LotteryTicket(): amount must be a non-negative int, got -3",), "kept"),
    Case("LotteryTicket-amount-str", lambda tmp, dev: LotteryTicket(amount="0.2"),
         TypeError, ("LotteryTicket(): amount must be a float in [0, 1] or a non-negative int", "'0.2' of type str"),
         "kept"),
    Case("LotteryTicket-amount-bool", lambda tmp, dev: LotteryTicket(amount=True),
         TypeError, ("amount must be a float in [0, 1] or a non-negative int", "True of type bool"), "kept"),
    Case("LotteryTicket.apply-count-above-remaining",
         lambda tmp, dev: LotteryTicket.apply(nn.Linear(5, 4).to(dev), "weight", amount=21),
         ValueError, ("LotteryTicket.compute_mask(): amount must be at most the number of unpruned weights (20), got 21",),
         "kept"),
    Case("LotteryTicket.apply-unknown-tensor", lambda tmp, dev: LotteryTicket.apply(nn.Linear(2, 2), "weights", 0.2),
         ValueError, ("LotteryTicket.apply(): name must be a parameter of Linear", "['weight', 'bias']", "'weights'"),
         "kept"),
    Case("LotteryTicket.apply-not-a-module", lambda tmp, dev: LotteryTicket.apply("layer", "weight", 0.2),
         TypeError, ("LotteryTicket.apply(): module must be an nn.Module, got str",), "kept"),
    # PruningRates, prunable, prune_layerwise
    Case("PruningRates-conv-above-1", lambda tmp, dev: PruningRates(conv=2),
         ValueError, ("PruningRates(): conv must be a float in [0, 1], got 2",), "kept"),
    Case("PruningRates-by_name-key-not-str", lambda tmp, dev: PruningRates(by_name={3: 0.2}),
         TypeError, ("PruningRates(): by_name keys must be str, got 3",), "kept"),
    Case("PruningRates-by_name-rate-above-1", lambda tmp, dev: PruningRates(by_name={"fc": 1.5}),
         ValueError, ("PruningRates(): by_name['fc'] must be a float in [0, 1], got 1.5",), "kept"),
    Case("prune_layerwise-rates-str", lambda tmp, dev: prune_layerwise(_mlp(dev), "0.2"),
         TypeError, ("prune_layerwise(): rates must be a PruningRates or a float, got '0.2'",), "kept"),
    Case("prune_layerwise-rate-above-1", lambda tmp, dev: prune_layerwise(_mlp(dev), 1.2),
         ValueError, ("prune_layerwise(): rates must be a float in [0, 1], got 1.2",), "kept"),
    Case("prune_layerwise-by_name-matches-nothing",
         lambda tmp, dev: prune_layerwise(_mlp(dev), PruningRates(by_name={"fc": 0.2})),
         ValueError, ("prune_layerwise(): rates.by_name key 'fc' matches no prunable layer", "['0', '2']"), "kept"),
    Case("prunable-exclude-unknown-name", lambda tmp, dev: prunable(_mlp(dev), exclude=["fc9"]),
         ValueError, ("prunable(): exclude names a module that is not in the model, got 'fc9'", "['0', '2']"), "kept"),
    Case("prunable-exclude-foreign-module", lambda tmp, dev: prunable(_mlp(dev), exclude=[nn.Linear(1, 1)]),
         ValueError, ("prunable(): exclude holds a module that is not part of the model, got Linear",), "kept"),
    Case("prunable-exclude-int", lambda tmp, dev: prunable(_mlp(dev), exclude=[3]),
         TypeError, ("prunable(): exclude must hold module names, modules or module types, got 3",), "kept"),
    Case("prunable-not-a-module", lambda tmp, dev: prunable("model"),
         TypeError, ("prunable(): model must be an nn.Module, got str",), "kept"),
    # set_masks
    Case("set_masks-unknown-weight",
         lambda tmp, dev: set_masks(_mlp(dev), {"1.weight": torch.ones(5, 6, device=dev)}),
         ValueError, ("set_masks(): masks has a key that is not a prunable weight of the model, got '1.weight'",
                      "['0.weight', '2.weight']"), "kept"),
    Case("set_masks-wrong-shape", lambda tmp, dev: set_masks(_mlp(dev), {"0.weight": torch.ones(6, 5, device=dev)}),
         ValueError, ("set_masks(): the mask for 0.weight must have shape (5, 6), got (6, 5)",), "kept"),
    # rewind hooks, Rewinder, rewind
    Case("register_rewind_hooks-negative-step", lambda tmp, dev: register_rewind_hooks(_mlp(dev), at_step=-1),
         ValueError, ("register_rewind_hooks(): at_step must be >= 0, got -1",), "kept"),
    Case("register_rewind_hooks-step-float", lambda tmp, dev: register_rewind_hooks(_mlp(dev), at_step=1.5),
         TypeError, ("register_rewind_hooks(): at_step must be an int, got 1.5",), "kept"),
    Case("register_rewind_hooks-late-without-optimizer", lambda tmp, dev: register_rewind_hooks(_mlp(dev), at_step=2),
         ValueError, ("register_rewind_hooks(): optimizer must be given when at_step > 0 (got at_step=2)",), "kept"),
    Case("register_rewind_hooks-optimizer-over-other-parameters",
         lambda tmp, dev: register_rewind_hooks(_mlp(dev), at_step=2, optimizer=_other_optimizer(dev)),
         ValueError, ("register_rewind_hooks(): optimizer must optimize parameters of model", "2 other tensors"),
         "kept"),
    Case("register_rewind_hooks-not-a-module", lambda tmp, dev: register_rewind_hooks("model"),
         TypeError, ("register_rewind_hooks(): model must be an nn.Module, got str",), "kept"),
    Case("Rewinder.rewind-before-its-point", _late_rewind,
         RuntimeError, ("Rewinder.rewind(): no rewind point yet", "after optimizer step 3", "0 steps"), "kept"),
    Case("rewind-without-hooks", lambda tmp, dev: rewind(_mlp(dev)),
         RuntimeError, ("rewind(): model has no rewind hooks", "register_rewind_hooks(model)"), "kept"),
    # save_ticket / load_ticket
    Case("save_ticket-without-rewind-point", lambda tmp, dev: save_ticket(_mlp(dev), tmp / "t.pt"),
         RuntimeError, ("save_ticket(): model has no rewind point", "register_rewind_hooks(model)"), "kept"),
    Case("load_ticket-other-shapes", _ticket_on_other_shapes,
         ValueError, ("load_ticket(): 0.weight has shape (5, 7) in the model but (5, 6) in the ticket",), "kept"),
    Case("load_ticket-a-state-dict", lambda tmp, dev: load_ticket(_mlp(dev), _file(tmp, "sd.pt", _mlp(dev).state_dict())),
         ValueError, ("load_ticket():", "sd.pt", "must be a ticket saved by save_ticket()"), "kept"),
    # masked_training arguments and state
    Case("masked_training-optimizer-none", lambda tmp, dev: masked_training(_mlp(dev), None),
         TypeError, ("masked_training(): optimizer must be a torch.optim.Optimizer, got NoneType",), "kept"),
    Case("masked_training-model-not-a-module", lambda tmp, dev: masked_training("model", _other_optimizer(dev)),
         TypeError, ("masked_training(): model must be an nn.Module, got str",), "kept"),
    Case("masked_training-sparse_density-above-1",
         lambda tmp, dev: masked_training(_pruned(dev), _other_optimizer(dev), sparse_density=2),
         ValueError, ("masked_training(): sparse_density must be a float in [0, 1], got 2",), "kept"),
    Case("masked_training-entered-twice", _twice,
         RuntimeError, ("masked_training(): this context is already active",), "kept"),
    Case("masked_training-pruned-inside", _pruned_inside,
         RuntimeError, ("masked_training(): Linear.weight was pruned or replaced inside the context",
                        "prune outside masked_training()"), "kept"),
    # data loaders and files
    Case("read_idx-missing-file", lambda tmp, dev: read_idx(tmp / "absent-idx1-ubyte"),
         FileNotFoundError, ("read_idx(): path must be an existing idx file", "absent-idx1-ubyte"), "kept"),
    Case("read_idx-bad-magic", lambda tmp, dev: _idx(tmp, bytes([0x50, 0x4B, 3, 4]) + bytes(8)),
         ValueError, ("read_idx():", "train-images-idx3-ubyte", "idx magic number", "got 0x504b0304"), "kept"),
    Case("read_idx-truncated", lambda tmp, dev: _idx(tmp, bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2])),
         ValueError, ("read_idx():", "must hold 5 bytes of data for shape (5,), got 2 (truncated)"), "kept"),
    Case("load_dataset-unknown-name", lambda tmp, dev: load_dataset("cifar-100"),
         ValueError, ("load_dataset(): dataset must be one of ['digits', 'mnist', 'fashion-mnist', 'cifar10', "
                      "'synthetic'], got 'cifar-100'",), "kept"),
    Case("load_dataset-mnist-missing", lambda tmp, dev: load_dataset("mnist", data_dir=tmp),
         FileNotFoundError, ("load_dataset(): data set 'mnist' was not found", str(Path("MNIST") / "raw"), "download=True"),
         "kept"),
    Case("load_dataset-name-not-str", lambda tmp, dev: load_dataset(10),
         TypeError, ("name must be a str",), "kept"),
    Case("InMemoryLoader-batch-size-0", lambda tmp, dev: InMemoryLoader(torch.zeros(4, 1), torch.zeros(4), 0),
         ValueError, ("InMemoryLoader(): batch_size must be positive, got 0",), "kept"),
    Case("InMemoryLoader-lengths-differ", lambda tmp, dev: InMemoryLoader(torch.zeros(4, 1), torch.zeros(3), 2),
         ValueError, ("InMemoryLoader():", "same length, got 4 and 3"), "kept"),
]

SHARPENED = [
    Case("load_ticket-none-saved", lambda tmp, dev: load_ticket(_mlp(dev), _file(tmp, "none.pt", None)),
         ValueError, ("load_ticket():", "none.pt", "must be a ticket saved by save_ticket()", "NoneType"), "sharpened"),
    Case("load_ticket-missing-file", lambda tmp, dev: load_ticket(_mlp(dev), tmp / "absent.pt"),
         FileNotFoundError, ("load_ticket(): path must be an existing ticket file", "absent.pt", "does not exist"),
         "sharpened"),
    Case("cifar10-one-label-short", lambda tmp, dev: _cifar10(tmp, "data_batch_5", labels=[0, 1, 2]),
         ValueError, ("load_dataset():", "data_batch_5", "one label per image, got 3 labels for 4 images"), "sharpened"),
]

CASES = FIXED + SHARPENED + KEPT


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_a_clear_error(case: Case, tmp_path: Path, device: torch.device) -> None:
    with pytest.raises(case.error) as caught:
        case.call(tmp_path, device)
    assert type(caught.value) is case.error, f"{type(caught.value).__name__}: {caught.value}"
    message = str(caught.value)
    missing = [word for word in case.words if word not in message]
    assert missing == [], f"{message!r} lacks {missing}"


def test_the_table_is_well_formed() -> None:
    assert len({case.name for case in CASES}) == len(CASES)
    assert all(case.words for case in CASES)
    for table, since in ((FIXED, "fixed"), (SHARPENED, "sharpened"), (KEPT, "kept")):
        assert table and all(case.since == since for case in table)
