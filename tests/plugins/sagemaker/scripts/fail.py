"""Fails: with a message in output/failure (as SageMaker asks) or only on stderr."""

import argparse
import os
import sys
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--message", default="")
args, _ = parser.parse_known_args()
print("loading data...")
print("Traceback (most recent call last):\nValueError: column 'label' is missing", file=sys.stderr)
if args.message:
    Path(os.environ["SM_OUTPUT_DIR"], "failure").write_text(args.message)
sys.exit(3)
