"""How IMP makes a level's mask (one more round, or one shot from the dense net), and the counts a
level's mask keeps, which every method prunes to.

``pruning`` (global or layer-wise), the rates and ``exclude`` are read here and nowhere else in
the experiment; :func:`check_pruning` tries them on the model before anything is trained.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.utils.prune as prune
from torch import Tensor, nn

from lth_prune.layers import output_layer, prunable_layers, prunable_tensor, stored_tensor
from lth_prune.imp.config import ExperimentConfig
from lth_prune.masks import get_masks, set_masks
from lth_prune.methods import LotteryTicket, PruningRates, prunable, prune_layerwise
from lth_prune.rewind import restore_state

__all__ = ["check_pruning", "level_targets", "prune_level", "remaining_after"]


def prune_level(
    net: nn.Module, config: ExperimentConfig, level: int, dense_trained: Mapping[str, Tensor] | None
) -> None:
    """Prune ``net`` (trained at ``level - 1``) to ``level``'s mask, as the config says.

    Iteratively, one more round at the configured rates; with ``one_shot``, from the dense
    trained network (``dense_trained``, its state after level 0) straight to the count that
    ``level`` rounds would leave.

    Raises:
        RuntimeError: if ``one_shot`` and ``dense_trained`` is ``None``.
    """
    if not config.one_shot:
        _prune_round(net, config)
        return
    if dense_trained is None:
        raise RuntimeError("prune_level(): one-shot pruning needs the dense trained state of level 0.")
    set_masks(net, {name: torch.ones_like(mask) for name, mask in get_masks(net).items()})
    restore_state(net, dense_trained)
    targets = level_targets(net, config, level)
    pairs = prunable(net, exclude=config.exclude)
    if isinstance(targets, int):
        total = sum(_weight(module).numel() for module, _ in pairs)
        prune.global_unstructured(pairs, pruning_method=LotteryTicket, amount=total - targets)
        return
    for name, module in prunable_layers(net, config.exclude, "prune_level()"):
        LotteryTicket.apply(module, prunable_tensor(module) or "weight", amount=_weight(module).numel() - targets[name])


def level_targets(net: nn.Module, config: ExperimentConfig, level: int) -> int | dict[str, int]:
    """The weights ``level`` rounds leave: one total (global pruning) or a count per layer name.

    What IMP reaches iteratively; one-shot pruning, the criteria at initialization and gradual
    pruning prune straight to it, so levels of every method compare.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.Linear(10, 2))
        >>> level_targets(net, ExperimentConfig(pruning="global", rate=0.5), 2)
        30
        >>> level_targets(net, ExperimentConfig(rate=0.5), 1)
        {'0': 50, '1': 15}
    """
    named = prunable_layers(net, config.exclude, "level_targets()")
    if config.pruning_mode == "global":
        return remaining_after(sum(_weight(module).numel() for _, module in named), config.rate, level)
    rates, output = _rates(config), output_layer(net)
    return {
        name: remaining_after(_weight(module).numel(), rates.rate_for(name, module, is_output=module is output), level)
        for name, module in named
    }


def check_pruning(net: nn.Module, config: ExperimentConfig, caller: str) -> None:
    """Check the pruning settings against a freshly built ``net``, before any work.

    Raises:
        ValueError: if an ``exclude`` name is not a module of the model (the message lists the
            prunable layers), or nothing is left to prune.
    """
    pairs = prunable_layers(net, config.exclude, caller)
    if not pairs:
        layers = [name for name, _ in prunable_layers(net, (), caller)]
        raise ValueError(
            f"{caller}: the model must have a convolution or linear layer left to prune, got none "
            f"(its prunable layers: {layers}; exclude: {list(config.exclude)})."
        )


def remaining_after(total: int, rate: float, rounds: int) -> int:
    """Weights left of ``total`` after ``rounds`` rounds that each prune ``round(rate * remaining)``.

    Example:
        >>> remaining_after(1000, 0.2, 2)
        640
    """
    remaining = total
    for _ in range(rounds):
        remaining -= round(rate * remaining)
    return remaining


def _prune_round(net: nn.Module, config: ExperimentConfig) -> None:
    if config.pruning_mode == "global":
        prune.global_unstructured(
            prunable(net, exclude=config.exclude), pruning_method=LotteryTicket, amount=config.rate
        )
    else:
        prune_layerwise(net, _rates(config), exclude=config.exclude)


def _rates(config: ExperimentConfig) -> PruningRates:
    return PruningRates(conv=config.conv_rate, linear=config.rate, output=config.output_rate)


def _weight(module: nn.Module) -> Tensor:
    return stored_tensor(module)
