"""One of many small jobs: logs when it starts and ends, for the tenant-fairness test."""

import argparse
import time

parser = argparse.ArgumentParser()
parser.add_argument("--item", type=int, required=True)
parser.add_argument("--log", required=True)
parser.add_argument("--seconds", type=float, default=0.2)
args, _ = parser.parse_known_args()
with open(args.log, "a") as fh:
    fh.write(f"start {args.item} {time.time()}\n")
time.sleep(args.seconds)
with open(args.log, "a") as fh:
    fh.write(f"end {args.item} {time.time()}\n")
