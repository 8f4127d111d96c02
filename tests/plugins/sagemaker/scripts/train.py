"""A script-mode training script for the tests: reads its channels and hyperparameters.

The model (``weights.txt``) depends only on the inputs, so its model.tar.gz is the same
bytes every run; what the script saw of SageMaker's contract goes to
``output/data/seen.json`` for the tests to inspect.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import helper

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--scale", type=float, default=1.0)
args, _ = parser.parse_known_args()

rows = 0
channels = json.loads(os.environ["SM_CHANNELS"])
listing = {}
for channel in channels:
    folder = Path(os.environ[f"SM_CHANNEL_{channel.upper()}"])
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    listing[channel] = files
    for name in files:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            rows += pq.read_metadata(folder / name).num_rows
        else:
            rows += len((folder / name).read_text().splitlines())

Path(os.environ["SM_MODEL_DIR"], "weights.txt").write_text(helper.weights(args.epochs, args.scale, rows))
config = Path(os.environ["SM_INPUT_CONFIG_DIR"])
seen = {
    "argv": sys.argv[1:],
    "cwd": os.getcwd(),
    "env": {k: v for k, v in os.environ.items() if k.startswith("SM_") or k == "TRAINING_JOB_NAME"},
    "channels": listing,
    "config": {p.name: json.loads(p.read_text()) for p in sorted(config.glob("*.json"))},
}
Path(os.environ["SM_OUTPUT_DATA_DIR"], "seen.json").write_text(json.dumps(seen))
print(f"trained {args.epochs} epochs on {rows} rows")
