"""Iterative magnitude pruning inside a Lightning ``Trainer``: :class:`LotteryTicketPruning`.

Lightning's own ``ModelPruning(use_lottery_ticket_hypothesis=True)`` resets the survivors to
their initial values, with neither late rewinding, nor per-level records, nor a resume that
knows the level (and its reset wrote into ``weight``, not ``weight_orig``, for years). This
callback runs the lottery-ticket search the way :mod:`lth_prune.imp` does: every
``every_n_epochs`` epochs it records the level's metrics, prunes the remaining weights with
:class:`lth_prune.LotteryTicket` (globally, or at per-layer rates), rewinds the survivors to
initialization or to the weights after optimizer step ``rewind_step``, and resets the optimizer
state (or keeps it). A checkpoint holds the level, the masks and the rewind point (and the model's weights dense, with
pruned entries zero, so a fresh module loads it), so ``trainer.fit(..., ckpt_path=...)``
resumes at the right level with the right masks.

Example::

    pruning = LotteryTicketPruning(amount=0.2, rounds=4, every_n_epochs=5)
    trainer = lightning.Trainer(max_epochs=5 * (4 + 1), callbacks=[pruning])  # the last level trains too
    trainer.fit(module, train_loader, val_loader)
    pruning.records   # one dict per level: weights remaining and the logged metrics

The docs' how-to "Where you already work" runs a full example, resume included.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import lightning.pytorch as pl
import torch
import torch.nn.utils.prune as prune
from torch import nn

from lth_prune.masks import dense_state_dict, get_masks, set_masks, sparsity_report
from lth_prune.methods import LotteryTicket, PruningRates, prunable, prune_layerwise
from lth_prune.rewind import Rewinder, register_rewind_hooks
from lth_prune.tickets import save_ticket

__all__ = ["LotteryTicketPruning"]


class LotteryTicketPruning(pl.Callback):
    """IMP as a Lightning callback: a pruning round every ``every_n_epochs`` epochs, with rewinding.

    Args:
        amount: the fraction of the remaining weights pruned each round, over all layers together
            (global); ignored where ``rates`` is given.
        rates: per-layer rates (:class:`lth_prune.PruningRates`), layer by layer as the paper does.
        rounds: how many rounds; the run should train ``every_n_epochs * (rounds + 1)`` epochs
            so that the last level trains too.
        every_n_epochs: epochs per level.
        rewind_step: 0 rewinds to initialization (the weights at the start of fit), ``k > 0`` to
            the weights after optimizer step ``k`` (late rewinding).
        reset_optimizer: clear the optimizers' state (momentum, Adam's moments) after rewinding.
        exclude: layers never pruned, as dotted names.
        module: the attribute of the LightningModule holding the network; default the module.
        save_dir: write each level's ticket there (``ticket-<level>.pt``, see
            :func:`lth_prune.save_ticket`) and the records (``levels.json``).

    Attributes:
        level: the current level (0: dense).
        records: one dict per finished level: ``level``, ``weights_remaining`` and the
            trainer's ``callback_metrics`` at the level's end.
    """

    def __init__(
        self,
        amount: float = 0.2,
        *,
        rates: PruningRates | None = None,
        rounds: int = 1,
        every_n_epochs: int = 1,
        rewind_step: int = 0,
        reset_optimizer: bool = True,
        exclude: Iterable[str] = (),
        module: str | None = None,
        save_dir: str | Path | None = None,
    ) -> None:
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= amount < 1.0:
            raise ValueError(f"LotteryTicketPruning(): amount must be a float in [0, 1), got {amount!r}.")
        if rates is not None and not isinstance(rates, PruningRates):
            raise TypeError(f"LotteryTicketPruning(): rates must be a lth_prune.PruningRates, got {type(rates).__name__}.")
        for name, value, low in (("rounds", rounds, 0), ("every_n_epochs", every_n_epochs, 1), ("rewind_step", rewind_step, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"LotteryTicketPruning(): {name} must be an int >= {low}, got {value!r}.")
        self.amount, self.rates, self.rounds, self.every_n_epochs = float(amount), rates, rounds, every_n_epochs
        self.rewind_step, self.reset_optimizer, self.exclude = rewind_step, reset_optimizer, tuple(exclude)
        self.module, self.save_dir = module, None if save_dir is None else Path(save_dir)
        self.level = 0
        self.records: list[dict[str, Any]] = []
        self._rewinder: Rewinder | None = None
        self._restored: dict[str, Any] | None = None
        self._net_ref: nn.Module | None = None

    # -- Lightning hooks -----------------------------------------------------------------------

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        # The model's state is saved dense (pruned weights as zeros), so that a fresh, unpruned
        # module loads it: Lightning loads the model before the callbacks, which then put the
        # masks back (on_fit_start). The rewind point is kept whole in the callback's state.
        checkpoint["state_dict"] = dense_state_dict(checkpoint["state_dict"])

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        net = self._net(pl_module)
        optimizer = trainer.optimizers[0] if self.rewind_step > 0 else None
        if self._restored is not None and self._restored["masks"]:
            set_masks(net, {name: mask.to(next(net.parameters()).device) for name, mask in self._restored["masks"].items()})
        if self._restored is not None and self._restored["rewind_point"] is not None:
            self._rewinder = register_rewind_hooks(net)
            self._rewinder.set_rewind_point(self._restored["rewind_point"])
            self._rewinder.rewind_step = self._restored["rewind_step"]
        else:
            self._rewinder = register_rewind_hooks(net, at_step=self.rewind_step, optimizer=optimizer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs != 0:
            return
        net = self._net(pl_module)
        self.records.append({
            "level": self.level, "weights_remaining": _remaining(net),
            **{key: float(value) for key, value in trainer.callback_metrics.items() if _is_number(value)},
        })
        if self.level >= self.rounds:
            self._save_records()
            return
        if self.rates is not None:
            prune_layerwise(net, self.rates, exclude=self.exclude)
        else:
            prune.global_unstructured(prunable(net, exclude=self.exclude), pruning_method=LotteryTicket, amount=self.amount)
        if self._rewinder is None:
            raise RuntimeError("LotteryTicketPruning: no rewind point; the callback was not started by Trainer.fit().")
        self._rewinder.rewind()
        if self.reset_optimizer:
            for optimizer in trainer.optimizers:
                optimizer.state.clear()
        self.level += 1
        pl_module.log_dict({"lth/level": float(self.level), "lth/weights_remaining": _remaining(net)})
        if self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            save_ticket(net, self.save_dir / f"ticket-{self.level}.pt", self._rewinder)
        self._save_records()

    def state_dict(self) -> dict[str, Any]:
        rewinder = self._rewinder
        point = rewinder.rewind_point if rewinder is not None and rewinder.has_rewind_point else None
        masks = {} if self._net_ref is None else {name: mask.cpu() for name, mask in get_masks(self._net_ref).items()}
        return {
            "level": self.level, "records": self.records, "rewind_point": point, "masks": masks,
            "rewind_step": 0 if rewinder is None else rewinder.rewind_step,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.level = int(state_dict["level"])
        self.records = list(state_dict["records"])
        self._restored = state_dict

    # -- internals -----------------------------------------------------------------------------

    def _net(self, pl_module: pl.LightningModule) -> nn.Module:
        net = pl_module if self.module is None else getattr(pl_module, self.module, None)
        if not isinstance(net, nn.Module):
            raise ValueError(f"LotteryTicketPruning(): module must name an nn.Module of the LightningModule, got {self.module!r}.")
        self._net_ref = net
        return net

    def _save_records(self) -> None:
        if self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            (self.save_dir / "levels.json").write_text(json.dumps(self.records, indent=2))


def _remaining(net: nn.Module) -> float:
    rows = sparsity_report(net)
    return sum(row.remaining for row in rows) / max(1, sum(row.total for row in rows))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.numel() == 1)
