"""One command for a GPU: run lth_prune's device checks, timings and one IMP level on CUDA.

Run from the repository root, with the package installed editable and the ``dev`` extras::

    python benchmarks/gpu_check.py                        # on CUDA, within 8 minutes on one H200
    python benchmarks/gpu_check.py --device cpu --quick   # the CPU smoke run CI does (~1 min)

It runs three parts, each under a hard time budget, and prints one table at the end (also
written to ``--out`` as ``summary.md`` and ``summary.json``, beside each part's log):

``tests``
    ``pytest tests --device cuda`` on the device-dependent tests: those that take the root
    ``conftest.py``'s ``device`` fixture (selected by the fixtures each test uses, so a new one
    is included without a list to update). The row counts passed / failed / skipped and its
    notes name every failure.
``timing``
    ``pytest benchmarks/test_timing.py --quick --device cuda``, whose every benchmark checks what
    it timed; its failures are the first row. One row per variant then gives its time relative
    to dense for each pass, from the suite's own paired ratios (``benchmarks/summary.py``):
    the median over models and sparsity levels, and the range. The full table and figure are
    in ``OUT/timing/``.
``imp``
    One IMP level of Conv-2 and of ResNet-20 on CIFAR-shaped synthetic data at batch 128: train
    dense, prune at the paper's per-layer rates, rewind, train inside
    :func:`lth_prune.masked_training`. A speed row gives images per second of dense and masked
    training (``lth_prune.training.train``, median of interleaved blocks, warmed up, timed
    between ``torch.cuda.synchronize()`` calls), their time ratio, and the host syncs per
    training step. A check row gives: the masks exact (no pruned weight nonzero after
    training, the masks unchanged), the masks identical when the CPU and the device prune
    copies of the same weights, and the largest difference between the device's and the CPU's
    training of the same steps on the same batches (``max |device - cpu| / max |cpu|`` over
    every tensor; tolerance 1e-4 on CUDA, run in full float32 with deterministic cuDNN since
    TF32 convolutions and reordered sums differ from the CPU by more; exactly 0 on the CPU).

Each row's status is ``pass``, ``FAIL``, ``timeout`` (the part's budget ran out before its
checks finished), ``error`` (it raised; see notes and the log) or ``info`` (figures, no check).
The peak GPU memory column is ``torch.cuda.max_memory_allocated`` over the part (reset between
parts and models); ``n/a`` on the CPU. The exit status is 1 when any row is not ``pass`` or
``info``, 2 for bad arguments (refused before any work).

Time: each part has a budget (:data:`BUDGET`: tests 120 s, timing 150 s, imp 100 s, 50 s per
model); a pytest part starts no test after it and is killed :data:`GRACE` seconds later, part imp
stops between blocks. With start-up, a run ends within 8 minutes. ``--quick`` runs the first
:data:`QUICK_TESTS` device tests, LeNet-300-100's timings only, and part imp at batch 8 for 2
steps.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

if not __package__:
    # Run as a file (python benchmarks/gpu_check.py): import the benchmarks package from the
    # repository root, as `python -m benchmarks.gpu_check` would.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from tabulate import tabulate  # noqa: E402

from benchmarks import summary  # noqa: E402
from benchmarks._gpu_level import Deadline, LevelResult, PartTimeout, imp_level  # noqa: E402
from benchmarks._gpu_pytest import PytestOutcome, run_pytest  # noqa: E402

PARTS = ("tests", "timing", "imp")
# Seconds per part (see the module's docstring): the three and the start-up fit 8 minutes.
BUDGET = {"tests": 120, "timing": 150, "imp": 100}
GRACE = 20
IMP_MODELS = ("conv2", "resnet20")
# (batch size, steps, timed blocks) of part imp; --steps overrides the steps.
FULL_SIZES, QUICK_SIZES = (128, 20, 5), (8, 2, 2)
# --quick: a slice of each pytest part, enough to exercise the script in about a minute.
QUICK_TESTS = 12
QUICK_TIMING = ("-k", "lenet300_100 and not inference", "--span", "0.05")
# Part imp's CPU agreement on CUDA, as the largest difference over the largest value of a tensor.
# In float32 the two devices' sums round differently by about 1e-7 of their size, and 20 steps of
# SGD, whose update is linear in the gradient, keep that near 1e-6; a real fault (a mask not
# applied, a wrong gradient) moves the weights by 1e-3 of their size or more.
CUDA_TOLERANCE = 1e-4
NO_GPU = "--device cuda needs a GPU; run with --device cpu --quick for the CPU smoke run"


def build_parser() -> argparse.ArgumentParser:
    """The command line; ``--help`` gives each part's time budget."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/gpu_check.py",
        description="Run lth_prune's device-dependent tests, the quick timing suite and one IMP level "
        "on a GPU, and print one summary table.",
        epilog=f"Time budget per part: tests {BUDGET['tests']} s, timing {BUDGET['timing']} s, imp "
        f"{BUDGET['imp']} s (each model half); under 8 minutes in all on one H200.",
    )
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default: cuda)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke sizes: {QUICK_TESTS} device tests, lenet300_100's timings, batch "
                        f"{QUICK_SIZES[0]}, {QUICK_SIZES[1]} steps (what CI runs with --device cpu)")
    parser.add_argument("--out", type=Path, default=Path("gpu_check"),
                        help="directory for summary.md, summary.json and the parts' logs (default: gpu_check)")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated subset of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"part imp's training steps compared with the CPU, and per timed block "
                        f"(default: {FULL_SIZES[1]}, --quick {QUICK_SIZES[1]})")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check every argument before any work; exits with status 2 on a bad one."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        parser.error(f"--device must be cpu, cuda or cuda:N, got {args.device!r}.")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device must be cpu, cuda or cuda:N, got {args.device!r}.")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(NO_GPU)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        parser.error(f"--device {args.device}: this machine has {torch.cuda.device_count()} GPU(s).")
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = [part for part in parts if part not in PARTS]
    if unknown or not parts:
        parser.error(f"--parts must be a comma-separated subset of {', '.join(PARTS)}, got {args.parts!r}.")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be a positive int, got {args.steps}.")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out must be a directory, got the file {args.out}.")
    args.device, args.parts = device, [part for part in PARTS if part in parts]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen parts, print and save the table; 0 when every check passed, else 1."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    runners: dict[str, Callable[[argparse.Namespace], list[dict[str, Any]]]] = {
        "tests": part_tests, "timing": part_timing, "imp": part_imp,
    }
    rows: list[dict[str, Any]] = []
    for part in args.parts:
        print(f"[gpu_check] part {part} (budget {BUDGET[part]} s) ...", file=sys.stderr, flush=True)
        try:
            rows += runners[part](args)
        except Exception as error:  # one broken part must not hide the others' results
            traceback.print_exc()
            rows.append(_row(part, "part", "error", "", None, f"{type(error).__name__}: {error}"))
    for row in rows:
        row["peak_memory"] = _memory(row["peak_memory_bytes"], args.device)
    ok = all(row["status"] in ("pass", "info") for row in rows)
    elapsed = time.monotonic() - start
    header = (f"lth_prune gpu_check on {_describe(args.device)}, torch {torch.__version__}, "
              f"{'--quick, ' if args.quick else ''}{elapsed:.0f} s: {'all checks pass' if ok else 'CHECKS FAILED'}")
    table = format_table(rows)
    print(f"\n{header}\n\n{table}")
    (args.out / "summary.md").write_text(f"{header}\n\n{table}\n")
    record = {"device": str(args.device), "device_name": _describe(args.device), "torch": torch.__version__,
              "quick": args.quick, "parts": args.parts, "seconds": elapsed, "ok": ok, "rows": rows}
    (args.out / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0 if ok else 1


def part_tests(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Part tests: ``pytest tests --device D`` on the tests that take the ``device`` fixture."""
    arguments = ["tests", "-q", "--device", str(args.device), "--gpu-check-device-tests"]
    if args.quick:
        arguments += ["--gpu-check-limit", str(QUICK_TESTS)]
    outcome = run_pytest(arguments, args.out, "tests", BUDGET["tests"], GRACE)
    return [_pytest_row("tests", f"pytest tests --device {args.device} (device tests)", outcome)]


def part_timing(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Part timing: the quick timing suite on the device, its checks and its ratios to dense."""
    results = args.out / "timing" / "benchmarks.json"
    results.parent.mkdir(exist_ok=True)
    results.unlink(missing_ok=True)
    arguments = ["benchmarks/test_timing.py", "-q", "--quick", "--device", str(args.device),
                 "--benchmark-json", str(results), "--summary-dir", str(results.parent)]
    if args.quick:
        arguments += QUICK_TIMING
    outcome = run_pytest(arguments, args.out, "timing", BUDGET["timing"], GRACE)
    rows = [_pytest_row("timing", "benchmarks/test_timing.py --quick checks", outcome)]
    timings = summary.rows_from_json(results) if results.is_file() else []
    ratios = summary.ratio_rows(timings)
    passes = [name for name in ("forward", "backward", "train_step", "inference")
              if any(row.time_ratio.get(name) is not None for row in ratios)]
    models = ", ".join(dict.fromkeys(row.model for row in ratios))
    levels = "/".join(f"{level:.0%}" for level in sorted({row.weights_remaining for row in ratios}, reverse=True))
    for variant in dict.fromkeys(row.variant for row in ratios if row.variant != summary.BASELINE):
        own = [row for row in ratios if row.variant == variant]
        cells = []
        for name in passes:
            values = [row.time_ratio[name] for row in own if row.time_ratio.get(name) is not None]
            if values:
                cells.append(f"{name} {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")
        memory = [row.memory_ratio for row in own if row.memory_ratio is not None]
        parameters = f"; parameters {statistics.median(memory):.2f}x dense" if memory else ""
        rows.append(_row("timing", f"{variant} / dense", "info", ", ".join(cells), None,
                         f"time ratio, median (range) over {models} at {levels}{parameters}"))
    return rows


def part_imp(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Part imp: one IMP level of each of :data:`IMP_MODELS`, dense against masked training."""
    batch_size, steps, blocks = QUICK_SIZES if args.quick else FULL_SIZES
    steps = args.steps or steps
    tolerance = 0.0 if args.device.type == "cpu" else CUDA_TOLERANCE
    rows = []
    for name in IMP_MODELS:
        try:
            result = imp_level(name, args.device, batch_size, steps, blocks, tolerance,
                               Deadline(BUDGET["imp"] / len(IMP_MODELS)))
        except PartTimeout as error:
            rows.append(_row("imp", f"{name}: one IMP level", "timeout", "", None, str(error)))
            continue
        except Exception as error:  # the other model still runs
            traceback.print_exc()
            rows.append(_row("imp", f"{name}: one IMP level", "error", "", None, f"{type(error).__name__}: {error}"))
            continue
        rows += _level_rows(result, batch_size, steps, blocks)
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary as a GitHub-markdown table."""
    headers = ["part", "check", "status", "figures", "peak GPU memory", "notes"]
    columns = ("part", "check", "status", "figures", "peak_memory", "notes")
    body = [[row[column] for column in columns] for row in rows]
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def _pytest_row(part: str, check: str, outcome: PytestOutcome) -> dict[str, Any]:
    report = outcome.report
    counts = {name: report.get(name, 0) for name in ("passed", "failed", "error", "skipped")}
    figures = (f"{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, "
               f"{counts['skipped']} skipped of {report.get('selected', 0)}")
    notes = [f"{outcome.seconds:.0f} s, log {outcome.log}"]
    if report.get("over_budget"):
        notes.append(f"{report['over_budget']} not started: time budget spent")
    if report.get("failures"):
        notes.append("failed: " + " ".join(report["failures"]))
    if outcome.returncode is None:
        status, figures = "timeout", f"killed after {outcome.seconds:.0f} s; " + figures
    elif not report:
        status = "error"
        notes.append(f"pytest exited with {outcome.returncode} before its report; see the log")
    elif counts["failed"] or counts["error"] or outcome.returncode != 0 or counts["passed"] == 0:
        status = "FAIL"
        notes.append(f"pytest exit status {outcome.returncode}")
    else:
        status = "pass"
    data = {**report, "returncode": outcome.returncode, "seconds": outcome.seconds}
    return _row(part, check, status, figures, report.get("peak_memory_bytes"), "; ".join(notes), data)


def _level_rows(result: LevelResult, batch_size: int, steps: int, blocks: int) -> list[dict[str, Any]]:
    syncs = ("n/a" if result.syncs_per_step is None else
             ", ".join(f"{kind} {count:g}" for kind, count in result.syncs_per_step.items()))
    speed = (f"dense {result.dense_images_per_second:,.0f} img/s, masked {result.masked_images_per_second:,.0f} "
             f"img/s, masked / dense time {result.time_ratio:.2f}; host syncs per step: {syncs}")
    setup = (f"batch {batch_size}, SGD momentum, {result.weights_remaining:.1%} of weights left; median of "
             f"{blocks} interleaved blocks of {steps} steps")
    checks = (f"pruned weights nonzero after training: {result.revived} of {result.pruned:,}; masks unchanged: "
              f"{'yes' if result.masks_kept else 'NO'}; CPU masks identical: "
              f"{'yes' if result.cpu_masks_identical else 'NO'}")
    difference = ", ".join(f"{phase} {value:.1e}" for phase, value in result.cpu_difference.items())
    # No "|" in a cell: it would split the markdown table.
    agreement = (f"CPU agreement after {steps} steps (largest difference / largest value, per tensor): "
                 f"{difference} (tolerance {result.tolerance:g})")
    return [
        _row("imp", f"{result.model}: dense vs masked training", "info", speed, result.peak_memory_bytes, setup,
             dataclasses.asdict(result)),
        _row("imp", f"{result.model}: masks and CPU agreement", "pass" if result.correct else "FAIL", checks,
             None, agreement, {"correct": result.correct}),
    ]


def _row(part: str, check: str, status: str, figures: str, memory: int | None, notes: str,
         data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"part": part, "check": check, "status": status, "figures": figures, "peak_memory_bytes": memory,
            "notes": notes, "data": data or {}}


def _memory(peak_bytes: int | None, device: torch.device) -> str:
    if device.type != "cuda":
        return "n/a"
    return "-" if peak_bytes is None else f"{peak_bytes / 2**30:.2f} GiB"


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return "cpu"


if __name__ == "__main__":
    raise SystemExit(main())
