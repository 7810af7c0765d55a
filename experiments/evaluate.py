"""Evaluates a finished run from its checkpoints, without training.

python experiments/evaluate.py --workdir runs/mnist_usps/seed0 --raw-dir ../shared/data
prints source-only and ADDA accuracy on the run's target evaluation split.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from adda_jax import cli, train  # noqa: E402


def main() -> None:
  parser = cli.Parser(description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="folder of a run made by run.py")
  cli.add_data_flags(parser)
  args = parser.parse_args()
  print(json.dumps(train.evaluate_workdir(args.workdir, cli.data_source(args))))


if __name__ == "__main__":
  cli.main_guard(main)
