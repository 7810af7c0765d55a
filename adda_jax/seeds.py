"""Several seeds of one config in one invocation: `experiments/run.py --seeds 0-9`.

Every seed is an ordinary run in its own folder (ROOT/seedN): its own checkpoints, summary,
report and results row, so `evaluate.py --workdir ROOT/seedN` restores any one of them and
rerunning the command resumes each seed where it stopped. How the seeds train is chosen per
backend, by measurement (docs/speed.md):

- "vmap" (the default on GPU and TPU): the seeds' states are stacked along a leading axis and
  every stage trains them as one vmapped program: one compile, one dispatch per logging
  interval for all seeds, the datasets on the device once, and each seed drawing its own
  batches from its own keys, so a seed's numbers match its single-seed run up to float
  rounding (over a short run; over 10,000 steps rounding differences grow into another draw
  of the same distribution, docs/speed.md). A seed whose loss turns non-finite is dropped at
  the next logging boundary (its last good checkpoint kept, the reason in the log and in the
  exit status); the others go on.
  Seeds that resume from different steps train as separate stacks.
- "vmap_matmul": the same, with the training steps' convolutions written as batched matrix
  products (`ops.matmul_convolutions`), since vmapped convolutions with per-seed kernels
  become grouped convolutions, which backends run far below their speed on one large
  convolution. Not a default anywhere until a backend measures it faster
  (`experiments/bench_seeds.py`; on this project's CPU it was slower, docs/speed.md).
- "sequential" (the default on CPU): one seed after another in this process, sharing the
  loaded data. On XLA:CPU vmapped convolutions become grouped convolutions, measured slower
  per seed than the seeds one by one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from adda_jax import steps, train
from adda_jax.config import Config
from adda_jax.data.loading import DataSource
from adda_jax.data.pairs import PairData
from adda_jax.errors import UserError
from adda_jax.methods import stages_for
from adda_jax.methods.base import DATA, Stage
from adda_jax.progress import Progress
from adda_jax.results import git_commit
from adda_jax.runner import Placement, Stack, StageRunner, run_steps, stage_keys
from adda_jax.workdir import check_workdir, claim_workdir

Log = Callable[[str], None]
STRATEGIES = ("auto", "vmap", "vmap_matmul", "sequential")


def parse_seeds(text: str) -> list[int]:
  """"0-9" or "0,3,5" or "0-2,7" -> the seeds in order, each once."""
  seeds: list[int] = []
  try:
    for part in text.split(","):
      low, _, high = part.strip().partition("-")
      seeds += range(int(low), int(high or low) + 1)
  except ValueError:
    raise UserError(f"--seeds {text!r} is not a seed list such as 0-9 or 0,3,5") from None
  if not seeds:
    raise UserError(f"--seeds {text!r} names no seed; write a range such as 0-9")
  return list(dict.fromkeys(seeds))


def chosen_strategy(strategy: str) -> str:
  """"auto" -> sequential on CPU, vmap on accelerators; the others as given."""
  if strategy not in STRATEGIES:
    raise UserError(f"--seeds-strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
  if strategy != "auto":
    return strategy
  return "sequential" if jax.default_backend() == "cpu" else "vmap"


def seed_workdir(root: str, seed: int) -> str:
  return os.path.join(root, f"seed{seed}")


@dataclasses.dataclass
class Outcome:
  """The finished seeds' summaries, and why each other seed stopped."""
  summaries: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
  failed: dict[int, str] = dataclasses.field(default_factory=dict)


def run_seeds(cfg: Config, seeds: list[int], root: str, data: DataSource, *,
              fresh: bool = False, log: Log = print, pictures: bool = False,
              progress: Progress | None = None, strategy: str = "auto") -> Outcome:
  """Trains `cfg` once per seed into ROOT/seedN (see the module docstring); every seed's
  summary is saved as a single run's is. Data errors stop everything before any training;
  a seed that fails later is reported in the outcome, and the others finish."""
  progress = progress or Progress(enabled=False)
  strategy = chosen_strategy(strategy)
  configs = {seed: cfg.replace(seed=seed).validate() for seed in seeds}
  pair = train.load_data(cfg, data, progress.wrap(log))
  if strategy == "sequential":
    return _one_after_another(configs, root, data, pair, fresh, log, pictures, progress)
  with contextlib.ExitStack() as held:
    for seed in seeds:
      held.enter_context(train.held_workdir(seed_workdir(root, seed)))
    return _vmapped(configs, root, pair, fresh, progress.wrap(log), pictures, progress,
                    matmul=strategy == "vmap_matmul")


def _one_after_another(configs: dict[int, Config], root: str, data: DataSource,
                       pair: PairData, fresh: bool, log: Log, pictures: bool,
                       progress: Progress) -> Outcome:
  outcome = Outcome()
  for seed, cfg in configs.items():
    try:
      outcome.summaries[seed] = train.run(
          cfg, seed_workdir(root, seed), data, fresh=fresh, log=_prefixed(log, seed),
          pictures=pictures, progress=progress, pair=pair)
    except UserError as e:
      outcome.failed[seed] = str(e)
      log(f"[seed {seed}] error: {e}")
  return outcome


def _vmapped(configs: dict[int, Config], root: str, pair: PairData, fresh: bool, log: Log,
             pictures: bool, progress: Progress, matmul: bool) -> Outcome:
  cfg = next(iter(configs.values()))
  stages = stages_for(cfg)
  workdirs = {seed: seed_workdir(root, seed) for seed in configs}
  for seed, seed_cfg in configs.items():
    check_workdir(seed_cfg, workdirs[seed], stages, fresh)
  train.check_batch_size(cfg, pair, stages)
  for seed, seed_cfg in configs.items():
    claim_workdir(seed_cfg, workdirs[seed], fresh, train.stage_names(seed_cfg))
  commit = git_commit()
  placement = Placement.over_all_devices(cfg.batch_size)
  predict, embed = train.compiled_predict(cfg), train.compiled_embed(cfg)
  datasets = train.device_datasets(pair, placement, stages)
  runners = {seed: StageRunner(c, workdirs[seed], placement, commit)
             for seed, c in configs.items()}
  recorders = {seed: train.RunRecorder(c, workdirs[seed], commit, _prefixed(log, seed),
                                       Progress(enabled=False))
               for seed, c in configs.items()}
  earlier: dict[int, dict[str, Any]] = {seed: {} for seed in configs}
  outcome = Outcome()
  for index, stage in enumerate(stages):
    live = [seed for seed in configs if seed not in outcome.failed]
    trained = _train_stacked(stage, index, {s: runners[s] for s in live},
                             {s: earlier[s] for s in live}, datasets, placement, log,
                             train.monitor(cfg, predict, embed, pair, stage),
                             {s: recorders[s].on_log(stage) for s in live}, progress,
                             select=index == len(stages) - 1, matmul=matmul)
    for seed, (state, frozen, member) in trained.items():
      if member.stopped:
        outcome.failed[seed] = member.stopped
        continue
      earlier[seed][stage.name] = state
      recorders[seed].finish_stage(stage, state, frozen, member.record, member.history,
                                   predict, pair)
      if index == len(stages) - 1 and cfg.select:
        recorders[seed].record_selection(stage, runners[seed], state, frozen, predict, pair)
  for seed in configs:
    if seed not in outcome.failed:
      outcome.summaries[seed] = recorders[seed].close(stages, pair, pictures)
  return outcome


def _train_stacked(stage: Stage, index: int, runners: dict[int, StageRunner],
                   earlier: dict[int, dict[str, Any]], datasets, placement: Placement,
                   log: Log, measure, on_logs: dict[int, Callable], progress: Progress,
                   select: bool, matmul: bool) -> dict[int, tuple[Any, Any, Any]]:
  """Trains `stage` for every seed, one vmapped stack per starting step; returns each seed's
  (final state, frozen inputs, member) with the member's record, history and stop reason."""
  starts = {seed: runner.start(stage, index, earlier[seed], _prefixed(log, seed))
            for seed, runner in runners.items()}
  frozen = {seed: stage.frozen(earlier[seed]) for seed in runners}
  by_step: dict[int, list[int]] = {}
  for seed, (state, _) in starts.items():
    by_step.setdefault(int(state["step"]), []).append(seed)
  cfg = next(iter(runners.values())).cfg
  trained = {}
  for start, group in sorted(by_step.items()):
    state = placement.replicate(_stacked([starts[seed][0] for seed in group]))
    group_frozen = placement.replicate(_stacked([frozen[seed] for seed in group]))
    keys = jnp.stack([stage_keys(seed, index)[1] for seed in group])
    inputs, own = _group_inputs(stage, [placement.replicate(frozen[seed]) for seed in group],
                                datasets)
    call = steps.make_stage_call(stage.step, {name: DATA[name] for name in stage.data},
                                 cfg.batch_size, placement.shard_batch, stacked=True,
                                 stacked_data=own, matmul=matmul)
    members = [runners[seed].member(stage, starts[seed][1], frozen[seed], f"seed {seed}",
                                    measure, on_logs[seed], select) for seed in group]
    holder = {"frozen": group_frozen, "keys": keys, "inputs": inputs}

    def run_chunk(state, n, holder=holder, call=call):
      return steps.run_calls(
          lambda s, m: call(s, holder["frozen"], holder["inputs"], holder["keys"],
                            num_steps=m), state,
          n, runners[group[0]].steps_per_call, progress.advance)

    def keep(tree, indices, holder=holder, own=own):
      """The stack of the members at `indices`; their frozen inputs, keys and own
      datasets follow."""
      holder["frozen"], holder["keys"] = (_select(holder["frozen"], indices),
                                          _select(holder["keys"], indices))
      holder["inputs"] = {name: _select(data, indices) if name in own else data
                          for name, data in holder["inputs"].items()}
      return _select(tree, indices)

    if len(group) < len(runners) or start:
      log(f"[{stage.name}] seeds {', '.join(map(str, group))} from step {start}")
    with progress.stage(stage.name, stage.num_steps, start):
      finals = run_steps(stage.name, state, members, runners[group[0]].commit, run_chunk,
                          stage.num_steps, cfg, log, Stack(split=_unstacked, keep=keep))
    for seed, member, final in zip(group, members, finals):
      trained[seed] = (final, frozen[seed], member)
  return trained


def _group_inputs(stage: Stage, frozen: list[Any], datasets) -> tuple[dict, tuple[str, ...]]:
  """The datasets a stack samples from, and the names of those each seed has its own copy
  of (stacked): the ones the stage prepares from the seed's frozen parameters."""
  prepared = [stage.inputs(f, datasets) for f in frozen]
  own = tuple(name for name in stage.data if prepared[0][name] is not datasets[name])
  return ({name: _stacked([p[name] for p in prepared]) if name in own else datasets[name]
           for name in stage.data}, own)


def _stacked(trees: list[Any]) -> Any:
  return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def _unstacked(tree: Any) -> list[Any]:
  count = len(jax.tree.leaves(tree)[0])
  return [jax.tree.map(lambda leaf: leaf[i], tree) for i in range(count)]


def _select(tree: Any, indices: list[int]) -> Any:
  return jax.tree.map(lambda leaf: leaf[np.asarray(indices)], tree)


def _prefixed(log: Log, seed: int) -> Log:
  return lambda message: log(f"[seed {seed}] {message}")
