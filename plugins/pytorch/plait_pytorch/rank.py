"""One rank of a PyTorch task, started by ``torch.distributed.run``.

``python -m torch.distributed.run ... -m plait_pytorch.rank JOB.json``: every rank joins the
process group, runs the task's function with plait's context (rank, local rank, world size
in ``current_context()``), and rank 0 writes the attempt's result. A rank that fails writes
its traceback to ``error-<rank>.json`` and exits non-zero, which makes torchrun stop the
others.
"""

from __future__ import annotations

import json
import os
import sys


def main(job_path: str) -> int:
    import torch
    import torch.distributed as dist
    from plait.sdk import read_job, run_attempt, write_file, write_result

    job = read_job(job_path)
    workdir = job["workdir"]  # a folder here, or the blob store's (a PyTorchJob's pod)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    backend = job.get("backend") or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    dist.init_process_group(backend)
    payload = dict(job["payload"])
    payload["extras"] = {"rank": rank, "local_rank": local_rank, "world_size": world_size, "backend": backend}
    payload["discard_outputs"] = rank != 0
    try:
        result = run_attempt(payload)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if result["status"] != "succeeded":
        write_file(workdir, f"error-{rank}.json", json.dumps({**result, "rank": rank}).encode())
        print(result.get("traceback") or result["message"], file=sys.stderr)
        return 1
    if rank == 0:
        write_result(workdir, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
