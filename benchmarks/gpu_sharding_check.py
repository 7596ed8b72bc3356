"""AFP steps under FSDP2 and DDP on GPUs (NCCL) against one process with the whole batch, on a GPU.

The GPU counterpart of tests/test_sharded_training.py (which runs the same steps on 2 CPU processes with
gloo): `tests/sharded_afp_script.py` with `XLING_SHARDED_DEVICE=cuda`, launched with torchrun on
min(GPUs, 2) processes (one process per GPU; NCCL does not run two ranks on one GPU, so a one-GPU machine
checks the wrapped model's forward, hooks and early stop with one rank). Compared with the one-process
run on the same GPU: loss and contrastive loss of every step, the first step's gradients, the weights after
three steps and the trained model's sentence vectors; for FSDP2 also the checkpoint saved from the shards
and reloaded. Prints the largest absolute difference of each and exits 1 beyond `--tolerance`.

    python benchmarks/gpu_sharding_check.py [--tolerance 1e-4] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parent.parent / "tests" / "sharded_afp_script.py"


def largest_difference(first, second) -> float:
    """The largest absolute difference between two results (floats, lists, tensors, dicts of tensors)."""
    if isinstance(first, dict):
        assert first.keys() == second.keys(), sorted(set(first) ^ set(second))
        return max((largest_difference(first[key], second[key]) for key in first), default=0.0)
    if isinstance(first, (list, tuple)):
        return max((abs(a - b) for a, b in zip(first, second, strict=True)), default=0.0)
    return (first.detach().float().cpu() - second.detach().float().cpu()).abs().max().item()


def launch(engine: str, processes: int, folder: Path) -> dict:
    result_file = folder / f"{engine}.pt"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SCRIPT.parent.parent), os.environ.get("PYTHONPATH")])),
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        str(SCRIPT),
        engine,
        str(folder / engine),
        str(result_file),
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if completed.returncode != 0:
        print(completed.stdout[-2000:], completed.stderr[-4000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"{engine}: torchrun exited with {completed.returncode}")
    return torch.load(result_file, weights_only=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        default="cuda",
        help="cpu: the same check on 2 gloo processes (to try the script without a GPU)",
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "gpu_sharding_check.py needs a CUDA GPU; none is visible (the CPU version is "
            "tests/test_sharded_training.py)"
        )
    processes = min(torch.cuda.device_count(), 2) if args.device == "cuda" else 2
    os.environ["XLING_SHARDED_DEVICE"] = args.device
    module = runpy.run_path(str(SCRIPT))
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        single = module["run"]("one", str(folder / "one"))
        single.pop("trainer"), single.pop("model")
        where = torch.cuda.get_device_name(0) + ", NCCL" if args.device == "cuda" else "CPU, gloo"
        print(f"{where}: {processes} process(es) against one process with the whole batch on the same device")
        for engine in ("fsdp2", "ddp"):
            sharded = launch(engine, processes, folder)
            rows = {
                name: largest_difference(sharded[name], single[name])
                for name in ("losses", "contrastive", "grads", "state", "embeddings")
            }
            if engine == "fsdp2":
                rows["reloaded checkpoint"] = largest_difference(sharded["reloaded_state"], single["state"])
            for name, value in rows.items():
                verdict = "ok" if value <= args.tolerance else "DIFFERENT"
                failed |= value > args.tolerance
                print(f"  {engine:6s} {name:20s} largest |difference| {value:.2e}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
