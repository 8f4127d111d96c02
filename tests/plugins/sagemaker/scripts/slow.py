"""Notes that it started (its pid in --marker), then trains for --seconds."""

import argparse
import os
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--marker", required=True)
parser.add_argument("--seconds", type=float, default=60)
args, _ = parser.parse_known_args()
with open(args.marker, "a") as fh:
    fh.write(f"{os.getpid()}\n")
time.sleep(args.seconds)
Path(os.environ["SM_MODEL_DIR"], "weights.txt").write_text("slow\n")
