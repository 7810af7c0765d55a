"""Trains and evaluates one run: python experiments/run.py --pair svhn_mnist [--method M] [flags],
or on your own domains: --source DOMAIN --target DOMAIN (folders, TFDS names, built-ins).

Stage 1 pretrains the source encoder and classifier; stage 2 is the method's own (ADDA: the
target encoder against a discriminator); each stage's model is then measured on the target
test split. Rerunning the same command resumes from the newest checkpoints; finished stages
are reused.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from adda_jax import interrupts  # noqa: E402

interrupts.exit_on_sigint()  # Before the heavy imports: Ctrl-C is one line from the start.

from adda_jax import cli, results, train  # noqa: E402
from adda_jax.progress import Progress  # noqa: E402


def main() -> None:
  parser = cli.Parser(description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
  cli.add_run_flags(parser)
  args = parser.parse_args()
  if args.distributed:
    import jax
    jax.distributed.initialize()
  cfg = cli.config_from_args(args)
  workdir = args.workdir or cli.default_workdir(cfg)
  if args.results:
    results.check_file(args.results)
  summary = train.run(cfg, workdir, cli.data_source(args), fresh=args.fresh,
                      pretrained_from=args.pretrained_from, pictures=not args.no_pictures,
                      progress=Progress())
  if args.results:
    results.append_run(args.results, summary, command=" ".join(sys.argv))
    print(f"[results] appended to {args.results}")


if __name__ == "__main__":
  cli.main_guard(main)
