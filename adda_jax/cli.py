"""Command-line flags shared by the experiment scripts, and the one-line error handler."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

from adda_jax import xla_options
from adda_jax.configs import PAIRS, get_config
from adda_jax.configs.recipes import RECIPES, apply_recipe
from adda_jax.config import Config
from adda_jax.data import domains
from adda_jax.data.loading import DOMAINS, RAW_DIR_ENV, DataSource
from adda_jax.errors import UserError
from adda_jax.methods import REGISTRY


class Parser(argparse.ArgumentParser):
  """An ArgumentParser whose errors are one line (via UserError), like every other error."""

  def error(self, message: str):
    raise UserError(f"{message}; see --help")


def add_data_flags(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group("data")
  group.add_argument("--data-source", choices=("tfds", "raw"), default="tfds",
                     help="tfds: TFDS datasets (downloaded online, or prepared once from "
                          "--raw-dir); raw: read the raw files directly, without TFDS")
  group.add_argument("--raw-dir", default=None,
                     help=f"folder with the standard raw files, one subfolder per domain "
                          f"(mnist/, usps/, svhn/, mnist_m/) or all in one; default "
                          f"${RAW_DIR_ENV}; unset = download through TFDS")
  group.add_argument("--data-dir", default=None,
                     help="TFDS data dir where datasets are prepared (default: TFDS's, "
                          "~/tensorflow_datasets)")


def data_source(args: argparse.Namespace) -> DataSource:
  return DataSource(source=args.data_source, raw_dir=args.raw_dir, data_dir=args.data_dir)


def add_run_flags(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group(
      "what to adapt (one of: --pair; --source and --target; --config)")
  group.add_argument("--pair", metavar="PAIR",
                     help=f"a preset with the paper's protocol: {', '.join(PAIRS)}")
  group.add_argument("--source", metavar="DOMAIN",
                     help=f"your own source domain: a built-in one ({', '.join(DOMAINS)}), a "
                          f"folder with train/<class>/*.png and test/<class>/*.png, or a TFDS "
                          f"dataset name with image and label features (e.g. cifar10)")
  group.add_argument("--target", metavar="DOMAIN",
                     help="your own target domain, as --source; classes are matched by name")
  group.add_argument("--config", metavar="CONFIG_JSON",
                     help="repeat a run from its saved config (WORKDIR/config.json); flags "
                          "below override it")
  group = parser.add_argument_group("the run")
  group.add_argument("--workdir", default=None,
                     help="run folder for checkpoints, metrics and report (default "
                          "runs/PAIR/seedN)")
  group.add_argument("--fresh", action="store_true",
                     help="delete the run in --workdir and start over")
  group.add_argument("--results", default=None, metavar="CSV",
                     help="append this run's rows to a results CSV (e.g. results/digits.csv)")
  group.add_argument("--pretrained-from", default=None, metavar="WORKDIR",
                     help="reuse the finished stage 1 of the run in WORKDIR (same pair, seed "
                          "and pretraining settings): for sweeps over stage-2 settings")
  group.add_argument("--no-pictures", action="store_true",
                     help="skip the t-SNE, curves and confusion-matrix pictures at the end "
                          "(report.md is still written)")
  group.add_argument("--distributed", action="store_true",
                     help="one process of a multi-process run: jax.distributed.initialize() "
                          "first, then every process trains one data-parallel mesh over all "
                          "processes' devices; process 0 writes the workdir. On a cluster "
                          "(SLURM, TPU pod, ...) JAX finds the settings itself; elsewhere "
                          "give the three flags below, the same command on every host")
  group.add_argument("--coordinator", metavar="HOST:PORT",
                     help="--distributed: process 0's address (default: the cluster's, or "
                          "$JAX_COORDINATOR_ADDRESS)")
  group.add_argument("--num-processes", type=int, help="--distributed: how many processes")
  group.add_argument("--process-id", type=int, help="--distributed: this process's index")
  add_gpu_kernels_flag(group)
  methods = "; ".join(f"{m.name}: {m.summary}" for m in REGISTRY.values())
  group = parser.add_argument_group("method (overrides of the preset or config, as below; "
                                    "defaults in adda_jax/config.py)")
  group.add_argument("--method", help=f"default adda. {methods}")
  group.add_argument("--seed", type=int, help="seeds initialisation and batch order (default 0)")
  group.add_argument("--seeds", metavar="LIST",
                     help="several seeds in one invocation, e.g. 0-9 or 0,3,5: each an "
                          "ordinary run in WORKDIR/seedN (default runs/PAIR/seedN) with its "
                          "own results row; vmapped as one program on GPU/TPU, one after "
                          "another on CPU (--seeds-strategy)")
  group.add_argument("--seeds-strategy", default="auto",
                     help="auto (default: sequential on CPU, vmap elsewhere), vmap, "
                          "vmap_matmul (vmap, convolutions as batched matmuls) or sequential")
  group.add_argument("--adversarial-loss", help="adda: gan (default), minimax or confusion")
  group.add_argument("--sharing",
                     help="adda: untied (default; ADDA), tied (one encoder for both domains, "
                          "trained with C) or partial (conv blocks shared, fc per domain)")
  group.add_argument("--domain-weight", type=float,
                     help="adda tied/partial, dann (its lambda's maximum), confusion, can: "
                          "weight of the domain term (default 1)")
  group.add_argument("--mmd-kernel", help="ddc: gaussian (default) or multi (DAN's five)")
  group.add_argument("--mmd-weight", type=float, help="ddc: weight of the MMD (default 0.25)")
  group.add_argument("--target-im-weight", type=float,
                     help="adda (untied): add this weight times the information maximisation "
                          "loss of the target predictions to M_t's objective (default 0)")
  group.add_argument("--disc-input", help="features (paper, 500-d) or logits (authors' code)")
  group.add_argument("--adapt-update",
                     help="alternating (paper: D, then M_t against the new D) or "
                          "simultaneous (authors' code: both from one forward pass)")
  group = parser.add_argument_group(
      "self-training (a refinement stage after the method's last stage; "
      "adda_jax/methods/self_training.py)")
  group.add_argument("--recipe", help="a named, fixed set of settings laid over the pair's "
                                      f"preset: {', '.join(RECIPES)} (docs/recipe.md)")
  group.add_argument("--self-train-steps", type=int,
                     help="steps of self-training with a mean teacher (default 0: none)")
  group.add_argument("--self-train-lr", type=float, help="its Adam rate (default 1e-4)")
  group.add_argument("--pseudo-threshold", type=float,
                     help="teacher confidence a target pseudo-label needs (default 0.95)")
  group.add_argument("--class-balanced", action=argparse.BooleanOptionalAction, default=None,
                     help="weigh confident pseudo-labels so each class counts alike "
                          "(default off)")
  group.add_argument("--teacher-decay", type=float,
                     help="the teacher's moving-average decay (default 0.999)")
  group.add_argument("--consistency-weight", type=float,
                     help="weight of the student-teacher consistency (default 1)")
  group.add_argument("--pseudo-weight", type=float,
                     help="weight of the pseudo-label cross-entropy (default 1)")
  group.add_argument("--self-train-source-weight", type=float,
                     help="weight of the labelled source cross-entropy (default 1)")
  group.add_argument("--self-train-im-weight", type=float,
                     help="weight of information maximisation (entropy - diversity) on the "
                          "student's target predictions (default 0)")
  group.add_argument("--vat-weight", type=float,
                     help="weight of virtual adversarial training on the student's target "
                          "view (default 0)")
  group.add_argument("--vat-radius", type=float,
                     help="its perturbation's L2 norm per image, pixels in [0, 1] (default "
                          "3.5, DIRT-T's)")
  group.add_argument("--label-smoothing", type=float,
                     help="label smoothing of its source cross-entropy (default 0)")
  group.add_argument("--augment-shift", type=int,
                     help="random translation in pixels, source and target (default 2)")
  group.add_argument("--augment-noise", type=float,
                     help="noise on the student's target view, times the pixel range "
                          "(default 0.1)")
  group.add_argument("--augment-scale", type=float,
                     help="random zoom by up to this factor either way, source and target "
                          "(default 1: none)")
  group = parser.add_argument_group("optimisation")
  group.add_argument("--pretrain-steps", type=int, help="stage 1 steps (default 10000)")
  group.add_argument("--adapt-steps", type=int, help="stage 2 steps (default 10000)")
  group.add_argument("--batch-size", type=int,
                     help="images per domain per step (default 128); a multiple of the devices")
  group.add_argument("--pretrain-solver",
                     help="stage 1 solver: adam (default, the released code's) or caffe_lenet "
                          "(Caffe's LeNet solver: SGD momentum, 'inv' decay; see config.py)")
  group.add_argument("--pretrain-lr", type=float, help="stage 1 Adam rate (default 1e-3)")
  group.add_argument("--pretrain-label-smoothing", type=float,
                     help="label smoothing of stage 1's cross-entropy (default 0, the paper)")
  group.add_argument("--pretrain-augment-shift", type=int,
                     help="random translation of stage 1's images, in pixels (default 0, "
                          "the paper)")
  group.add_argument("--pretrain-augment-scale", type=float,
                     help="random zoom of stage 1's images by up to this factor either way "
                          "(default 1: none, the paper)")
  group.add_argument("--adapt-lr", type=float,
                     help="stage 2 Adam rate for D and M_t (default 2e-4)")
  group = parser.add_argument_group("data protocol and encoder")
  group.add_argument("--encoder", help="lenet (default; the paper's) or dtn (three stride-2 "
                                       "convs, 64-128-256, group-normalised: for 32x32 RGB)")
  group.add_argument("--input-norm", help="none (default; the paper) or instance: the "
                                          "encoder standardises each image per channel "
                                          "before its first layer (DIRT-T's default)")
  group.add_argument("--conv-relu", action=argparse.BooleanOptionalAction, default=None,
                     help="default --conv-relu: a ReLU after each conv block too, as the "
                          "released code's LeNet; --no-conv-relu: Caffe's LeNet, which the "
                          "paper names, ReLU only after fc 500")
  group.add_argument("--eval-split", help="test (default) or train (authors' code)")
  group.add_argument("--source-val-size", type=int, metavar="N",
                     help="hold N source training images out of training, for the label-free "
                          "validator source_accuracy (default 0: all train, as the papers)")
  group.add_argument("--full-sets", action="store_true",
                     help="MNIST<->USPS: train on the full sets, not the paper's 2000/1800")
  group.add_argument("--rgb32", action="store_true",
                     help="keep colour: 32x32 RGB inputs instead of 28x28 gray")
  group.add_argument("--image-size", type=int,
                     help="input side in pixels (default 28; the released code used 32)")
  group.add_argument("--pixel-scale", type=float,
                     help="inputs lie in [0, PIXEL_SCALE] (default 1; the released code: 255)")
  group = parser.add_argument_group("progress and checkpoints")
  group.add_argument("--log-every", type=int, help="steps between progress lines (500)")
  group.add_argument("--checkpoint-every", type=int,
                     help="steps between checkpoints inside a stage (2000)")
  group.add_argument("--select", metavar="VALIDATOR",
                     help="also keep the final stage's model at the progress line this "
                          "label-free validator prefers (entropy, im, bnm, snd; "
                          "source_accuracy and dev with --source-val-size) and report it "
                          "beside the last step's, with the oracle choice (reads target "
                          "labels) labelled as such")
  group.add_argument("--no-target-monitor", action="store_true",
                     help="skip the target accuracy shown at each progress line (it reads "
                          "target labels, for watching a run; no run selects on it)")
  add_data_flags(parser)


def add_gpu_kernels_flag(parser, several: bool = False) -> None:
  """--gpu-kernels, the GPU kernel policy (adda_jax/xla_options.py); `several`: a list of
  policies, for benchmarks that time each in turn."""
  parser.add_argument(
      "--gpu-kernels", choices=tuple(xla_options.GPU_KERNELS), nargs="+" if several else None,
      default=["deterministic"] if several else "deterministic",
      help="GPU only: deterministic (default; one seed, one result, no autotuning) or "
           "autotuned (XLA's defaults: the fastest kernels, results may differ in the last "
           "bits between invocations)" + ("; several are timed in turn" if several else ""))


def base_config(args: argparse.Namespace) -> Config:
  """The preset, the saved config, or a config for your own two domains (defaults of
  adda_jax/config.py: full sets, 28x28 gray unless --rgb32 or --image-size)."""
  given = [name for name, value in (("--pair", args.pair), ("--config", args.config))
           if value] + (["--source/--target"] if args.source or args.target else [])
  if len(given) != 1:
    raise UserError(f"say what to adapt with exactly one of --pair PRESET, --source and "
                    f"--target, or --config FILE (got {', '.join(given) or 'none'}); see --help")
  if args.pair:
    return get_config(args.pair)
  if args.config:
    return read_config_file(args.config)
  if not (args.source and args.target):
    raise UserError("--source and --target go together: give both domains")
  classes = domains.matched_classes(args.source, args.target, data_source(args))
  return Config(pair=f"{domains.short_name(args.source)}_{domains.short_name(args.target)}",
                source=args.source, target=args.target, class_names=classes)


def read_config_file(path: str) -> Config:
  try:
    with open(path) as f:
      data = json.load(f)
    return Config.from_json(data)
  except OSError as e:
    raise UserError(f"cannot read --config {path} ({e.strerror})")
  except (ValueError, TypeError, KeyError, AttributeError) as e:
    raise UserError(f"--config {path} is not a run's config.json ({type(e).__name__}: {e})")


def config_from_args(args: argparse.Namespace) -> Config:
  cfg = base_config(args)
  if args.recipe:
    cfg = apply_recipe(cfg, args.recipe)
  names = ("method", "seed", "pretrain_solver", "pretrain_steps", "adapt_steps", "batch_size",
           "pretrain_lr", "pretrain_label_smoothing", "pretrain_augment_shift",
           "pretrain_augment_scale", "adapt_lr",
           "adversarial_loss", "adapt_update", "disc_input",
           "sharing", "domain_weight", "mmd_kernel", "mmd_weight", "eval_split", "image_size",
           "pixel_scale", "conv_relu", "encoder", "input_norm", "log_every", "checkpoint_every",
           "select",
           "source_val_size", "target_im_weight", "self_train_steps", "self_train_lr",
           "pseudo_threshold", "class_balanced", "teacher_decay", "consistency_weight",
           "pseudo_weight", "self_train_source_weight", "self_train_im_weight", "vat_weight",
           "vat_radius", "label_smoothing", "augment_shift", "augment_noise",
           "augment_scale")
  changes = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
  if args.full_sets:
    changes.update(source_subset=None, target_subset=None)
  if args.rgb32:
    if args.image_size not in (None, 32):
      raise UserError(f"--rgb32 means 32x32 RGB; it cannot take --image-size "
                      f"{args.image_size}: drop one of the two flags")
    changes.update(image_size=32, channels=3)
  if args.no_target_monitor:
    changes.update(monitor_target=False)
  if args.pretrain_lr is not None and args.pretrain_solver == "caffe_lenet":
    raise UserError("--pretrain-lr sets Adam's rate; --pretrain-solver caffe_lenet has "
                    "Caffe's own (0.01, 'inv' decay): drop one of the two flags")
  return cfg.replace(**changes).validate()


def default_workdir(cfg: Config) -> str:
  return os.path.join("runs", cfg.pair, f"seed{cfg.seed}")


def main_guard(main: Callable[[], None]) -> None:
  """Runs `main`, turning a UserError into one line on stderr and exit status 2.

  After a handled error the process ends at once (`os._exit`): every file it writes is
  already complete (atomic renames, flushed appends), and a normal interpreter shutdown
  would let orbax's and tensorstore's leftover threads print pages of tracebacks after the
  one line.
  """
  try:
    main()
  except UserError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(2)
