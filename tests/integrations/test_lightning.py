"""IMP in a Lightning Trainer (lth_prune.integrations.lightning), on digits."""
from __future__ import annotations

import json
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import torch.nn.utils.prune as prune
from torch import nn

import lth_prune
from lth_prune.data import load_dataset
from lth_prune.rewind import capture_state

pytestmark = pytest.mark.extra("lightning")


@pytest.fixture(scope="module")
def pl() -> Any:
    import lightning.pytorch

    return lightning.pytorch


@pytest.fixture(scope="module")
def LotteryTicketPruning() -> Any:  # noqa: N802 - the class under test
    from lth_prune.integrations.lightning import LotteryTicketPruning

    return LotteryTicketPruning


@pytest.fixture(scope="module")
def Digits(pl):  # noqa: N802 - a LightningModule class, built once lightning is known to be there
    class Digits(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = lth_prune.models.get("lenet300_100", num_classes=10, input_shape=(1, 8, 8))
            self.initial = capture_state(self.net)

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            x, y = batch
            loss = F.cross_entropy(self(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_acc", (self(x).argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)

    return Digits


@pytest.fixture(scope="module")
def loaders():
    data = load_dataset("digits")
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.train_x, data.train_y), batch_size=64, shuffle=True)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.val_x, data.val_y), batch_size=144)
    return train, val


def _trainer(tmp_path, callback, epochs, extra=(), **kwargs):
    import lightning.pytorch as pl

    return pl.Trainer(max_epochs=epochs, callbacks=[callback, *extra], default_root_dir=str(tmp_path), logger=False,
                      enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", **kwargs)


def test_rounds_prune_exact_counts_rewind_bit_for_bit_and_record_levels(tmp_path, loaders, Digits, LotteryTicketPruning):
    module = Digits()
    callback = LotteryTicketPruning(amount=0.2, rounds=2, every_n_epochs=1, save_dir=tmp_path / "tickets")
    rewound = []
    original = LotteryTicketPruning.on_train_epoch_end

    def watch(self, trainer, pl_module):
        original(self, trainer, pl_module)
        rewound.append(capture_state(module.net))

    LotteryTicketPruning.on_train_epoch_end = watch
    try:
        _trainer(tmp_path, callback, epochs=3, enable_checkpointing=False).fit(module, *loaders)
    finally:
        LotteryTicketPruning.on_train_epoch_end = original
    total = 64 * 300 + 300 * 100 + 100 * 10
    remaining = [total, total - round(0.2 * total)]
    remaining.append(remaining[1] - round(0.2 * remaining[1]))
    assert [record["level"] for record in callback.records] == [0, 1, 2]
    assert [round(record["weights_remaining"] * total) for record in callback.records] == remaining
    assert all("val_acc" in record for record in callback.records)
    # After each round the survivors hold their initial values exactly (written into weight_orig).
    for state in rewound[:2]:
        for name in ("classifier.0.weight", "classifier.4.weight"):
            assert torch.equal(state[name], module.initial[name])
    masks = lth_prune.get_masks(module.net)
    assert sum(int(mask.sum()) for mask in masks.values()) == remaining[2]
    assert sorted(path.name for path in (tmp_path / "tickets").iterdir()) == ["levels.json", "ticket-1.pt", "ticket-2.pt"]
    assert len(json.loads((tmp_path / "tickets" / "levels.json").read_text())) == 3


def test_a_checkpoint_resumes_at_its_level_with_its_masks(tmp_path, loaders, pl, Digits, LotteryTicketPruning):
    first = Digits()
    callback = LotteryTicketPruning(amount=0.5, rounds=3, every_n_epochs=1)
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), save_last=True)
    _trainer(tmp_path, callback, epochs=2, extra=[checkpoint], enable_checkpointing=True).fit(first, *loaders)
    assert callback.level == 2
    masks = lth_prune.get_masks(first.net)
    second = Digits()  # a fresh, unpruned module, as after a restart
    resumed = LotteryTicketPruning(amount=0.5, rounds=3, every_n_epochs=1)
    _trainer(tmp_path, resumed, epochs=3, enable_checkpointing=False).fit(
        second, *loaders, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert [record["level"] for record in resumed.records] == [0, 1, 2]
    assert resumed.level == 3
    after = lth_prune.get_masks(second.net)
    assert all(bool((after[name] <= masks[name]).all()) for name in masks)  # pruned further, never regrown
    total = 64 * 300 + 300 * 100 + 100 * 10
    assert round(resumed.records[-1]["weights_remaining"] * total) == total - round(0.5 * total) - round(0.5 * (total - round(0.5 * total)))


def test_late_rewinding_and_bad_settings(tmp_path, loaders, Digits, LotteryTicketPruning):
    module = Digits()
    callback = LotteryTicketPruning(amount=0.2, rounds=1, rewind_step=3)
    _trainer(tmp_path, callback, epochs=2, enable_checkpointing=False).fit(module, *loaders)
    assert callback.state_dict()["rewind_step"] == 3
    with pytest.raises(ValueError, match=r"amount must be a float in \[0, 1\), got 1.0"):
        LotteryTicketPruning(amount=1.0)
    with pytest.raises(ValueError, match=r"every_n_epochs must be an int >= 1, got 0"):
        LotteryTicketPruning(every_n_epochs=0)


def test_a_checkpoint_holds_dense_weights_selected_so_a_nan_at_a_pruned_entry_stays_out(LotteryTicketPruning):
    # The checkpoint's weights go through lth_prune.dense_state_dict, as masked training's do:
    # a pruned entry is exactly 0, whatever weight_orig holds there (NaN * 0 would be NaN).
    net = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    prune.global_unstructured(lth_prune.prunable(net), pruning_method=lth_prune.LotteryTicket, amount=0.5)
    with torch.no_grad():
        net[0].weight_orig[net[0].weight_mask == 0] = float("nan")
    checkpoint = {"state_dict": {f"net.{key}": value for key, value in net.state_dict().items()}}
    LotteryTicketPruning(amount=0.2).on_save_checkpoint(None, None, checkpoint)
    state = checkpoint["state_dict"]
    assert sorted(state) == ["net.0.bias", "net.0.weight", "net.2.bias", "net.2.weight"]
    assert torch.isfinite(state["net.0.weight"]).all()
    assert torch.equal(state["net.0.weight"] == 0, net[0].weight_mask == 0)
