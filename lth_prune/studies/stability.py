"""Instability against the rewind step: when does training become stable to SGD noise?

Frankle, Dziugaite, Roy & Carbin (ICML 2020, Figure 2): for each step ``k``, the dense network
trained to step ``k`` is copied twice, each copy trains on to the end with its own SGD noise
(data order, augmentation), and the test error is measured along the straight line between them
(:func:`lth_prune.interpolation_path`). Instability (the path's largest error minus its
endpoints' mean) falls to about 0 after some ``k``: at ``k = 0`` for LeNet on MNIST, only after a
stretch of training for deeper networks; IMP finds matching tickets where it does.

:func:`rewind_stability` runs it; ``lth-prune stability`` is its command. One training to the
largest ``k`` is shared by every ``k``; each ``k`` then costs two trainings.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from lth_prune.connectivity import interpolation_path
from lth_prune.data import DataSplits
from lth_prune.imp.config import ExperimentConfig
from lth_prune.imp.phases import train_network
from lth_prune.imp.store import RunStore
from lth_prune.imp.seeding import derive_seed
from lth_prune.imp.setup import ModelSource, make_optimizer, prepare
from lth_prune.rewind import capture_state, restore_state

__all__ = ["RewindStability", "rewind_stability"]

POINTS = 30


@dataclass(frozen=True)
class RewindStability:
    """Instability at each rewind step, the mean over seeds and each seed's.

    Attributes:
        config: the settings the networks trained with.
        steps: the rewind steps ``k``, ascending.
        instability: the mean instability (a fraction of error) at each step.
        spread: its standard deviation over seeds (0 with one seed).
        errors: the mean error along the path at each step (``POINTS`` values from copy A to B).
        seeds: per seed, per step: ``{"instability": float, "errors": [float, ...]}``.
    """

    config: ExperimentConfig
    steps: tuple[int, ...]
    instability: tuple[float, ...]
    spread: tuple[float, ...]
    errors: tuple[tuple[float, ...], ...]
    seeds: dict[int, dict[int, dict[str, Any]]]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``stability.json``."""
        return {
            "config": self.config.to_dict(), "steps": list(self.steps), "instability": list(self.instability),
            "spread": list(self.spread), "errors": [list(path) for path in self.errors],
            "seeds": {str(seed): {str(k): value for k, value in by_step.items()} for seed, by_step in self.seeds.items()},
        }

    @classmethod
    def load(cls, run_dir: str | Path) -> RewindStability:
        """Read a directory written by :func:`rewind_stability`.

        Raises:
            FileNotFoundError: if it holds no ``stability.json``.
        """
        data = RunStore(run_dir).read_stability("RewindStability.load()")
        return cls(
            ExperimentConfig.from_dict(data["config"]), tuple(data["steps"]), tuple(data["instability"]),
            tuple(data["spread"]), tuple(tuple(path) for path in data["errors"]),
            {int(seed): {int(k): value for k, value in by_step.items()} for seed, by_step in data["seeds"].items()},
        )


def rewind_stability(
    config: ExperimentConfig,
    steps: Sequence[int],
    *,
    run_dir: str | Path | None = None,
    model: ModelSource = None,
    data: DataSplits | None = None,
    progress: bool | None = None,
) -> RewindStability:
    """Instability of the dense network's training against the rewind step, for each seed.

    Args:
        config: the network, data and training settings (rounds, rates and controls are unused).
        steps: the rewind steps ``k`` (0: the initialization); each below the training length.
        run_dir: where to write ``config.json`` and ``stability.json``; ``None``: nowhere.
        model: your own model, as :func:`lth_prune.imp.run` takes it.
        data: your own :class:`lth_prune.data.DataSplits`.
        progress: progress bars; default when standard error is a terminal.

    Returns:
        The :class:`RewindStability`.

    Raises:
        ValueError: if a step is negative, not an int, or not below the training length, or
            ``run_dir`` already holds a run; checked before anything trains.

    Example:
        >>> config = ExperimentConfig(dataset="synthetic", iterations=6)
        >>> result = rewind_stability(config, [0, 3], progress=False)
        >>> result.steps, len(result.errors[0])
        ((0, 3), 30)
    """
    if not isinstance(config, ExperimentConfig):
        raise TypeError(f"rewind_stability(): config must be an ExperimentConfig, got {type(config).__name__}.")
    if isinstance(steps, (str, bytes)) or not all(isinstance(k, int) and not isinstance(k, bool) for k in steps) or not steps:
        raise ValueError(f"rewind_stability(): steps must be a non-empty list of ints, got {steps!r}.")
    store = None if run_dir is None else RunStore(run_dir)
    if store is not None:
        store.check_start(config, False, "rewind_stability()", resumable=False)
    setup = prepare(config, model, data, progress, caller="rewind_stability()")
    chosen = tuple(sorted(set(steps)))
    if chosen[0] < 0 or chosen[-1] >= setup.iterations:
        raise ValueError(
            f"rewind_stability(): steps must be in [0, {setup.iterations - 1}] (the iterations per training), got {list(chosen)}."
        )
    per_seed = {seed: _seed(setup, seed, chosen) for seed in config.seeds}
    instability, spread, errors = [], [], []
    for k in chosen:
        values = [per_seed[seed][k]["instability"] for seed in config.seeds]
        instability.append(statistics.fmean(values))
        spread.append(statistics.stdev(values) if len(values) > 1 else 0.0)
        paths = [per_seed[seed][k]["errors"] for seed in config.seeds]
        errors.append(tuple(statistics.fmean(point) for point in zip(*paths)))
    result = RewindStability(config, chosen, tuple(instability), tuple(spread), tuple(errors), per_seed)
    if store is not None:
        with store.lock():
            store.write_config(config)
            store.write_stability(result.to_dict())
    return result


def _seed(setup: Any, seed: int, steps: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    net = setup.build(derive_seed(seed, "init"))
    states = {0: capture_state(net)} if steps[0] == 0 else {}
    wanted = set(steps) - {0}
    if wanted:
        optimizer = make_optimizer(net, setup.config)
        taken = {"steps": 0}

        def capture(*_: Any) -> None:
            taken["steps"] += 1
            if taken["steps"] in wanted:
                states[taken["steps"]] = capture_state(net)

        hook = optimizer.register_step_post_hook(capture)
        try:
            train_network(setup, net, seed=seed, level=0, phase="ticket", optimizer=optimizer, end=max(wanted))
        finally:
            hook.remove()
    measured = {}
    for k in tqdm(steps, desc=f"seed {seed} rewind steps", disable=not setup.progress):
        copies = []
        for copy in ("a", "b"):
            network = setup.build(derive_seed(seed, "init"))
            restore_state(network, states[k])
            train_network(setup, network, seed=seed, level=k, phase=f"stability_{copy}", start=k)
            copies.append(network)
        reestimate = setup.train_loader(derive_seed(seed, "stability_batchnorm", k)) \
            if setup.config.stability_batchnorm == "reestimate" else None
        path = interpolation_path(copies[0], capture_state(copies[0]), capture_state(copies[1]), setup.test_loader,
                                  points=POINTS, reestimate=reestimate)
        measured[k] = {"instability": path.instability, "errors": list(path.errors)}
    return measured
