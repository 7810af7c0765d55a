"""Times ADDA's training steps at the paper's shapes, beside the PyTorch eager reference.

python experiments/benchmark.py [--batch 128] [--size 28] [--channels 1] [--baseline]
                                [--torch-reference ../shared/bench/torch_adda_reference.py]
                                [--end-to-end ../shared/data]
python experiments/benchmark.py --encoder dtn --size 32 --channels 3 --baseline  # MNIST-M's

Reports the median ms/step over repeated blocks for pretraining (M_s + C), adaptation
(a D step and an M_t step) and evaluation (forward + argmax), images/s, compile time, peak host
memory and (where the backend reports it) device memory. The step timings use random arrays,
so they need neither TFDS nor any data; `--end-to-end RAW_DIR` adds the wall time of a whole
paper-length MNIST->USPS run from the raw files in RAW_DIR. `--baseline` also times the plain
formulation (the 2x2 max-pool via `reduce_window`, as flax's `nn.max_pool`, XLA's own
convolutions and their gradients, and XLA's default compiler options instead of
`adda_jax/xla_options.py`) for a before/after comparison in the same invocation.
When PyTorch is importable the reference script runs in the same invocation, and the ratio
ours/torch is printed. The last line is one JSON object.
"""
import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import linen as nn  # noqa: E402

from adda_jax import cli, ops, steps, train, xla_options  # noqa: E402
from adda_jax.configs import get_config  # noqa: E402
from adda_jax.data.loading import DataSource  # noqa: E402
from adda_jax.methods import networks_for, stages_for  # noqa: E402
from adda_jax.methods.base import DATA  # noqa: E402
from adda_jax.models import ENCODERS  # noqa: E402
from adda_jax.runner import Placement  # noqa: E402

DEFAULT_REFERENCE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench",
                                 "torch_adda_reference.py")


def timed(run_block, blocks: int, steps_per_block: int) -> float:
  """Median ms per step over `blocks` blocks, after one warm-up block."""
  jax.block_until_ready(run_block())
  times = []
  for _ in range(blocks):
    start = time.perf_counter()
    jax.block_until_ready(run_block())
    times.append((time.perf_counter() - start) / steps_per_block * 1e3)
  return statistics.median(times)


def measure(batch: int, size: int, channels: int, blocks: int, block_steps: int,
            steps_per_call: int, conv_relu: bool, encoder: str) -> dict:
  """ADDA's two stages as the runner builds them (adda_jax.methods), on random arrays."""
  cfg = get_config("mnist_usps").replace(image_size=size, channels=channels,
                                         conv_relu=conv_relu, batch_size=batch,
                                         encoder=encoder).validate()  # Bad sizes: one line.
  pretrain, adapt = stages_for(cfg)
  nets = networks_for(cfg)
  placement = Placement.over_all_devices(batch)
  rng = np.random.default_rng(0)
  n = 4096
  datasets = {name: placement.replicate(steps.DeviceData(
      jnp.asarray(rng.random((n, size, size, channels), np.float32)),
      jnp.asarray(rng.integers(0, 10, n).astype(np.int32)))) for name in ("source", "target")}
  key = jax.random.key(0)
  out = {}

  def stage_call(stage):
    return steps.make_stage_call(stage.step, {name: DATA[name] for name in stage.data}, batch,
                                 placement.shard_batch)

  call = stage_call(pretrain)
  holder = {"state": placement.replicate(pretrain.init(key, {}))}
  start = time.perf_counter()
  jax.block_until_ready(call.lower(holder["state"], {}, {"source": datasets["source"]}, key,
                                   num_steps=steps_per_call).compile())
  out["pretrain_compile_s"] = time.perf_counter() - start

  def pretrain_block():
    holder["state"], metrics = steps.run_calls(
        lambda s, k: call(s, {}, {"source": datasets["source"]}, key, num_steps=k),
        holder["state"], block_steps, steps_per_call)
    return metrics

  out["pretrain_ms"] = timed(pretrain_block, blocks, block_steps)

  earlier = {"pretrain": holder["state"]}
  frozen = placement.replicate(adapt.frozen(earlier))
  adapt_call = stage_call(adapt)
  holder["adapt"] = placement.replicate(adapt.init(key, earlier))

  adapt_inputs = adapt.inputs(frozen, datasets)  # As training runs it: M_s's features once.

  def adapt_block():
    holder["adapt"], metrics = steps.run_calls(
        lambda s, k: adapt_call(s, frozen, adapt_inputs, key, num_steps=k), holder["adapt"],
        block_steps, steps_per_call)
    return metrics

  out["adapt_ms"] = timed(adapt_block, blocks, block_steps)

  predict = steps.make_predict(nets)
  images = datasets["target"].images[:batch]

  def eval_block():
    return [predict(frozen["source_encoder"], frozen["classifier"], images)
            for _ in range(block_steps)]

  out["eval_ms"] = timed(eval_block, blocks, block_steps)
  out["pretrain_images_per_s"] = batch / out["pretrain_ms"] * 1e3
  out["adapt_images_per_s"] = 2 * batch / out["adapt_ms"] * 1e3
  return out


def end_to_end(raw_dir: str, steps_per_stage: int, batch: int) -> dict:
  """A whole run (raw files, no pictures): its wall seconds, each stage's training seconds
  and ms/step as the run measured them, and the rest (data, compiles, checkpoints, evals)."""
  cfg = get_config("mnist_usps").replace(pretrain_steps=steps_per_stage,
                                         adapt_steps=steps_per_stage, batch_size=batch)
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    summary = train.run(cfg, workdir, DataSource(source="raw", raw_dir=raw_dir),
                        log=lambda _: None)
    wall = time.perf_counter() - start
  stages = {name: summary[f"{name}_seconds"] for name in ("pretrain", "adapt")}
  return {"end_to_end_s": wall, "end_to_end_steps": steps_per_stage,
          "end_to_end_adda": summary["adda_accuracy"],
          **{f"end_to_end_{name}_s": seconds for name, seconds in stages.items()},
          **{f"end_to_end_{name}_ms": 1e3 * seconds / steps_per_stage
             for name, seconds in stages.items()},
          "end_to_end_other_s": wall - sum(stages.values())}


def torch_reference(path: str, batch: int, size: int, channels: int) -> dict | None:
  # Only looked up, not imported: the reference runs in its own process, and torch's thread
  # pools have no business in the one being timed.
  if importlib.util.find_spec("torch") is None:
    print("[torch] PyTorch not installed: reference skipped (pip install torch==2.13.0)")
    return None
  if not os.path.exists(path):
    print(f"[torch] reference script {path} not found: skipped")
    return None
  result = subprocess.run([sys.executable, path, "--batch", str(batch), "--size", str(size),
                           "--channels", str(channels)], capture_output=True, text=True,
                          check=True)
  return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--size", type=int, default=28)
  parser.add_argument("--channels", type=int, default=1)
  parser.add_argument("--conv-relu", action=argparse.BooleanOptionalAction, default=True,
                      help="time the released code's LeNet, the training default and the "
                           "network the PyTorch reference builds; --no-conv-relu: Caffe's")
  parser.add_argument("--encoder", choices=ENCODERS, default="lenet",
                      help="dtn: the 32x32 RGB encoder (with --size 32 --channels 3); the "
                           "PyTorch reference builds LeNet only, so it is skipped")
  parser.add_argument("--blocks", type=int, default=5)
  parser.add_argument("--block-steps", type=int, default=40)
  parser.add_argument("--steps-per-call", type=int, default=None,
                      help="training steps per dispatch (default: 1 on CPU, 500 elsewhere)")
  parser.add_argument("--baseline", action="store_true",
                      help="also time the plain formulation (flax nn.max_pool pooling, "
                           "default XLA options)")
  parser.add_argument("--torch-reference", default=DEFAULT_REFERENCE)
  parser.add_argument("--no-torch", action="store_true")
  parser.add_argument("--end-to-end", metavar="RAW_DIR", default=None,
                      help="also time a whole MNIST->USPS run (paper preset at --batch, raw "
                           "files in RAW_DIR, a temporary workdir): the wall time a user waits")
  parser.add_argument("--end-to-end-steps", type=int, default=10_000,
                      help="steps per stage of that run (default 10000, the paper's)")
  cli.add_gpu_kernels_flag(parser)
  args = parser.parse_args()
  xla_options.use_gpu_kernels(args.gpu_kernels)

  network = {"dtn": "DTN"}.get(args.encoder, "conv ReLU" if args.conv_relu else "Caffe LeNet")
  print(f"[bench] jax {jax.__version__} on {jax.devices()}, batch {args.batch}, "
        f"{args.size}x{args.size}x{args.channels}, {network}", flush=True)
  summary = {"backend": jax.default_backend(), "devices": jax.device_count(),
             "jax": jax.__version__, "batch": args.batch, "size": args.size,
             "channels": args.channels, "conv_relu": args.conv_relu, "encoder": args.encoder,
             "gpu_kernels": xla_options.gpu_kernels()}
  per_call = args.steps_per_call or steps.default_steps_per_call()
  if args.baseline:
    fast = ops.max_pool_2x2, ops.conv2d, ops.conv2d_max_pool_2x2, xla_options.for_default_backend
    ops.max_pool_2x2 = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
    ops.conv2d = ops.xla_conv2d
    ops.conv2d_max_pool_2x2 = ops.plain_conv2d_max_pool_2x2  # Through the two lines above.
    xla_options.for_default_backend = lambda use: {}
    base = measure(args.batch, args.size, args.channels, args.blocks, args.block_steps,
                   per_call, args.conv_relu, args.encoder)
    (ops.max_pool_2x2, ops.conv2d, ops.conv2d_max_pool_2x2,
     xla_options.for_default_backend) = fast
    summary.update({f"baseline_{k}": v for k, v in base.items()})
    print(f"[baseline] pretrain {base['pretrain_ms']:.2f} ms  adapt {base['adapt_ms']:.2f} ms  "
          f"eval {base['eval_ms']:.2f} ms", flush=True)
  ours = measure(args.batch, args.size, args.channels, args.blocks, args.block_steps, per_call,
                 args.conv_relu, args.encoder)
  summary.update(ours, steps_per_call=per_call,
                 xla_options=str({use: xla_options.for_default_backend(use)
                                   for use in ("train", "eval")}))
  print(f"[ours] pretrain {ours['pretrain_ms']:.2f} ms  adapt {ours['adapt_ms']:.2f} ms  "
        f"eval {ours['eval_ms']:.2f} ms  ({ours['pretrain_images_per_s']:.0f} img/s pretrain, "
        f"compile {ours['pretrain_compile_s']:.1f} s)", flush=True)
  if args.end_to_end:
    summary.update(end_to_end(args.end_to_end, args.end_to_end_steps, args.batch))
    print(f"[end-to-end] mnist_usps {args.end_to_end_steps}+{args.end_to_end_steps} steps: "
          f"{summary['end_to_end_s']:.1f} s (ADDA {100 * summary['end_to_end_adda']:.2f}%): "
          f"pretrain {summary['end_to_end_pretrain_s']:.1f} s "
          f"({summary['end_to_end_pretrain_ms']:.2f} ms/step, micro-benchmark "
          f"{ours['pretrain_ms']:.2f}), adapt {summary['end_to_end_adapt_s']:.1f} s "
          f"({summary['end_to_end_adapt_ms']:.2f} ms/step, micro-benchmark "
          f"{ours['adapt_ms']:.2f}), everything else {summary['end_to_end_other_s']:.1f} s",
          flush=True)
  summary["peak_host_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    summary["peak_device_mb"] = stats["peak_bytes_in_use"] / 2**20
  if not args.no_torch and args.encoder == "lenet":
    ref = torch_reference(args.torch_reference, args.batch, args.size, args.channels)
    if ref:
      for name in ("pretrain", "adapt", "eval"):
        summary[f"torch_{name}_ms"] = ref[f"{name}_ms"]
        summary[f"ratio_{name}"] = summary[f"{name}_ms"] / ref[f"{name}_ms"]
      summary["torch"] = ref["torch"]
      print(f"[torch {ref['torch']}] pretrain {ref['pretrain_ms']:.2f} ms  adapt "
            f"{ref['adapt_ms']:.2f} ms  eval {ref['eval_ms']:.2f} ms  -> ours/torch "
            f"{summary['ratio_pretrain']:.2f} / {summary['ratio_adapt']:.2f} / "
            f"{summary['ratio_eval']:.2f}", flush=True)
  print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()}))


if __name__ == "__main__":
  cli.main_guard(main)
