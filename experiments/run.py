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

from adda_jax import cli, hosts, results, train, xla_options  # noqa: E402
from adda_jax.errors import UserError  # noqa: E402
from adda_jax.progress import Progress  # noqa: E402


def main() -> None:
  parser = cli.Parser(description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
  cli.add_run_flags(parser)
  args = parser.parse_args()
  xla_options.use_gpu_kernels(args.gpu_kernels)
  if args.distributed and args.seeds is not None:  # Refused before joining the others.
    raise UserError("--seeds and --distributed do not go together yet: launch the seeds one "
                    "after another, each with --seed")
  if args.distributed:
    hosts.initialize(args.coordinator, args.num_processes, args.process_id)
  cfg = cli.config_from_args(args)
  if args.results:
    results.check_file(args.results)
  if args.seeds is not None:
    run_seeds(cfg, args)
    return
  workdir = args.workdir or cli.default_workdir(cfg)
  primary = hosts.is_primary()
  summary = train.run(cfg, workdir, cli.data_source(args), fresh=args.fresh,
                      pretrained_from=args.pretrained_from, pictures=not args.no_pictures,
                      progress=Progress(enabled=None if primary else False))
  if args.results and primary:
    results.append_run(args.results, summary, command=" ".join(sys.argv))
    print(f"[results] appended to {args.results}")
  if args.distributed:
    hosts.finish()


def run_seeds(cfg, args) -> None:
  """--seeds: every seed a run in WORKDIR/seedN, each finished one's rows appended."""
  from adda_jax import seeds
  if args.seed is not None or args.pretrained_from:
    raise UserError("--seeds trains several runs: drop --seed and --pretrained-from")
  seed_list = seeds.parse_seeds(args.seeds)
  root = args.workdir or os.path.join("runs", cfg.pair)
  outcome = seeds.run_seeds(cfg, seed_list, root, cli.data_source(args), fresh=args.fresh,
                            pictures=not args.no_pictures, progress=Progress(),
                            strategy=args.seeds_strategy)
  for seed in sorted(outcome.summaries):
    if args.results:
      results.append_run(args.results, outcome.summaries[seed], command=" ".join(sys.argv))
  if args.results and outcome.summaries:
    print(f"[results] {len(outcome.summaries)} seeds appended to {args.results}")
  if outcome.failed:
    raise UserError(f"{len(outcome.failed)} of {len(seed_list)} seeds stopped (the others "
                    f"finished): " + "; ".join(f"seed {seed}: {reason}"
                                               for seed, reason in outcome.failed.items()))


if __name__ == "__main__":
  cli.main_guard(main)
