"""Distributed IMP: torchrun with gloo matches one process; rank mismatches stop the run."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lth_prune import distributed, imp
from lth_prune.imp import ExperimentConfig
from lth_prune.tickets import read_ticket

SMALL = ["--dataset", "synthetic", "--rounds", "2", "--epochs", "2", "--controls", "random_reinit", "--quiet"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(args: list[str], ranks: int, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if ranks == 1:
        command = [sys.executable, "-m", "lth_prune", *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks),
                   "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m", "lth_prune", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def test_two_gloo_processes_match_one_process(tmp_path):
    one = _cli(["run", *SMALL, "--out", "one"], 1, tmp_path)
    two = _cli(["run", *SMALL, "--out", "two"], 2, tmp_path)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    single = json.loads((tmp_path / "one" / "results.json").read_text())
    double = json.loads((tmp_path / "two" / "results.json").read_text())
    for a, b in zip(single["levels"], double["levels"]):
        assert a["weights_remaining"] == b["weights_remaining"]
        assert a["layers"] == b["layers"]
        for key in ("test_accuracy", "random_reinit_accuracy", "no_retrain_accuracy"):
            if a[key] is not None:
                assert b[key] == pytest.approx(a[key], abs=0.02), key
        assert b["test_loss"] == pytest.approx(a["test_loss"], rel=1e-3)
    for level in (1, 2):
        masks_one = read_ticket(tmp_path / "one" / f"level_{level}" / "seed_0" / "ticket.pt")[0]
        masks_two = read_ticket(tmp_path / "two" / f"level_{level}" / "seed_0" / "ticket.pt")[0]
        assert all(torch.equal(masks_one[k], masks_two[k]) for k in masks_one)
    # only rank 0 wrote: one results file, and no stray temporary files
    assert not list((tmp_path / "two").rglob("*.tmp"))


def _mismatch_worker(rank: int, port: int, results) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        distributed.check_identical({"mask": torch.tensor([True, rank == 0])}, "the masks at level 1")
        results.put((rank, "passed"))
    except RuntimeError as error:
        results.put((rank, str(error)))
    finally:
        dist.destroy_process_group()


def test_rank_mismatch_fails_loudly():
    context = mp.get_context("spawn")
    results = context.Queue()
    port = _free_port()
    workers = [context.Process(target=_mismatch_worker, args=(rank, port, results)) for rank in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    messages = dict(results.get(timeout=10) for _ in range(2))
    for rank in (0, 1):
        assert "the masks at level 1 differ between ranks: ranks [1] disagree with rank 0" in messages[rank]


def test_not_distributed_helpers():
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main_process()
    distributed.check_identical({"a": torch.ones(2)}, "anything")  # a no-op in one process


def test_seeds_in_parallel_processes_match_sequential(tmp_path):
    config = ExperimentConfig(dataset="synthetic", rounds=1, epochs=1.0, controls=(), seeds=(0, 1))
    sequential = imp.run(config, progress=False)
    parallel = imp.run(config.replace(jobs=2), run_dir=tmp_path / "parallel", progress=False)
    for a, b in zip(sequential.levels, parallel.levels):
        assert [r["test_accuracy"] for r in a["seeds"]] == [r["test_accuracy"] for r in b["seeds"]]
        assert a["test_accuracy"] == b["test_accuracy"]
    assert (tmp_path / "parallel" / "level_1" / "seed_1" / "record.json").is_file()
    assert config.replace(jobs=2).run_name() == config.run_name()
