"""Evaluates a finished run from its checkpoints, without training.

python experiments/evaluate.py --workdir runs/mnist_usps/seed0 --raw-dir ../shared/data
prints source-only and ADDA accuracy on the run's target evaluation split (--report also
redraws the run's report and pictures).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from adda_jax import interrupts  # noqa: E402

interrupts.exit_on_sigint()  # Before the heavy imports: Ctrl-C is one line from the start.

from adda_jax import cli, results, train  # noqa: E402
from adda_jax.config import EVAL_SPLITS  # noqa: E402


def main() -> None:
  parser = cli.Parser(description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="folder of a run made by run.py")
  parser.add_argument("--eval-split", choices=EVAL_SPLITS, default=None,
                      help="evaluate on this target split instead of the run's own")
  parser.add_argument("--results", default=None, metavar="CSV",
                      help="append the rows (the run's own, re-measured) to a results CSV")
  parser.add_argument("--report", action="store_true",
                      help="also redraw the run's report.md and pictures from its checkpoints")
  cli.add_data_flags(parser)
  args = parser.parse_args()
  if args.results:
    results.check_file(args.results)
  summary = train.evaluate_workdir(args.workdir, cli.data_source(args), args.eval_split,
                                   write_report=args.report)
  print(json.dumps({k: v for k, v in summary.items() if k.endswith("_accuracy")}))
  if args.results:
    results.append_run(args.results, summary, command=" ".join(sys.argv))
    print(f"[results] appended to {args.results}")


if __name__ == "__main__":
  cli.main_guard(main)
