"""The end of a run, for people: pictures in the workdir and a short report.md beside them.

- tsne.png: t-SNE of source and target features before adaptation (stage 1's encoder for
  both domains) and after it (the encoders of the method's last stage: ADDA's M_s for the
  source and M_t for the target, a shared encoder for both otherwise; a method of one stage
  has that stage's panel only), coloured by domain and by class: the figure papers in this
  field show to say whether the domains now overlap.
  Up to TSNE_POINTS images per domain (source train, target eval split), a fixed draw.
- curves.png: every logged metric of every stage against its step (from metrics.jsonl).
- confusion.png: each stage's final model's confusion matrix on the target eval split, side
  by side: which classes adaptation (and each stage after it) fixed or broke.
- report.md: the config fields the method reads, the accuracies and stage times (the
  summary's own numbers), each stage's largest and smallest predicted class on the target
  (read without a target label: the one check here a user without target labels can make),
  the checkpoints, and the pictures.

Target labels appear here only to draw and measure, after training: nothing is chosen by them.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import Any, Callable

import jax
import numpy as np

from adda_jax import metrics
from adda_jax.config import Config
from adda_jax.data.pairs import PairData
from adda_jax.methods.base import Stage
from adda_jax.models import Networks

REPORT_FILE = "report.md"
PICTURES = ("tsne.png", "curves.png", "confusion.png")
TSNE_POINTS = 1000  # Per domain: about 20 s of t-SNE for both panels on two CPU cores.
_BATCH = 1000


@dataclasses.dataclass(frozen=True)
class FinishedStage:
  stage: Stage
  state: Any
  frozen: Any
  predicted: np.ndarray  # Its classes for the target eval split, from measuring its accuracy.


def write(workdir: str, cfg: Config, summary: dict[str, Any], nets: Networks, pair: PairData,
          finished: list[FinishedStage], pictures: bool, log: Callable[[str], None]) -> str:
  """Draws the pictures (unless `pictures` is false) and writes report.md; returns its path."""
  drawn: list[tuple[str, str]] = []
  if pictures:
    drawn = _pictures(workdir, cfg, nets, pair, finished, log)
  shares = [("source training labels", class_shares(pair.source_train[1], len(cfg.class_names)))]
  shares += [(done.stage.label, class_shares(done.predicted, len(cfg.class_names)))
             for done in finished]
  path = os.path.join(workdir, REPORT_FILE)
  with open(path + ".tmp", "w") as f:
    f.write(_markdown(workdir, cfg, summary, finished, shares, drawn))
  os.replace(path + ".tmp", path)
  log(f"[report] {path}" + (f" with {', '.join(name for name, _ in drawn)}" if drawn else ""))
  return path


def _pictures(workdir, cfg, nets, pair, finished, log) -> list[tuple[str, str]]:
  import matplotlib
  matplotlib.use("Agg")
  drawn = []
  history = metrics.read(workdir)
  if history:
    _curves(os.path.join(workdir, "curves.png"), history)
    drawn.append(("curves.png", "training curves: every logged metric by step"))
  panels = [(done.stage.label, confusion_counts(pair.target_eval[1], done.predicted,
                                                len(cfg.class_names))) for done in finished]
  _confusion(os.path.join(workdir, "confusion.png"), panels, cfg.class_names,
             f"target {cfg.eval_split}")
  drawn.append(("confusion.png", f"confusion matrix of each stage's model on the target "
                                 f"{cfg.eval_split} split"))
  if importlib.util.find_spec("sklearn") is None:
    log("[report] no t-SNE picture (scikit-learn is not installed); pip install scikit-learn")
    return drawn
  last = finished[-1]
  # A method of one stage (the oracle, CoGAN) has no "before": its one stage is the picture.
  rows = ([("before adaptation", finished[0]), (f"after ({last.stage.label})", last)]
          if len(finished) > 1 else [(last.stage.label, last)])
  _tsne(os.path.join(workdir, "tsne.png"), nets, pair, rows, cfg.class_names, cfg.seed)
  drawn.append(("tsne.png", "t-SNE of source and target features, by domain and by class"))
  return drawn


def _features(encode, encoder, images: np.ndarray) -> np.ndarray:
  return np.concatenate([np.asarray(encode(encoder, images[i:i + _BATCH]))
                         for i in range(0, len(images), _BATCH)])


def _sample(count: int, seed: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return np.sort(rng.permutation(count)[:TSNE_POINTS])


def tsne_perplexity(points: int) -> float:
  """scikit-learn's default of 30, lowered for small draws (it must stay under the count)."""
  return min(30.0, (points - 1) / 3)


def _tsne(path, nets, pair, rows, class_names, seed) -> None:
  import matplotlib.pyplot as plt
  from sklearn.manifold import TSNE
  source = _sample(len(pair.source_train[0]), seed)
  target = _sample(len(pair.target_eval[0]), seed + 1)
  xs, ys = pair.source_train[0][source], pair.source_train[1][source]
  xt, yt = pair.target_eval[0][target], pair.target_eval[1][target]
  fig, axes = plt.subplots(len(rows), 2, figsize=(11, 5 * len(rows)), squeeze=False)
  cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
  encode = jax.jit(nets.encoder.apply)  # One compiled encoder for every panel and domain.
  for (title, done), (by_domain, by_class) in zip(rows, axes):
    encoder_s, encoder_t = done.stage.encoders(done.state, done.frozen)
    features = np.concatenate([_features(encode, encoder_s, xs),
                               _features(encode, encoder_t, xt)])
    points = TSNE(2, perplexity=tsne_perplexity(len(features)), init="pca",
                  random_state=seed).fit_transform(features.astype(np.float64))
    ps, pt = points[:len(xs)], points[len(xs):]
    by_domain.scatter(*ps.T, s=4, c="tab:blue", label="source", alpha=0.6)
    by_domain.scatter(*pt.T, s=4, c="tab:red", label="target", alpha=0.6)
    by_domain.legend(markerscale=4, loc="best")
    by_domain.set_title(f"{title}: by domain")
    for marker, p, y in (("o", ps, ys), ("x", pt, yt)):
      by_class.scatter(*p.T, s=5, c=[cmap(int(v) % cmap.N) for v in y], marker=marker,
                       alpha=0.6, linewidths=0.6)
    for k, name in enumerate(class_names[:20]):
      by_class.scatter([], [], c=[cmap(k % cmap.N)], label=name, s=12)
    by_class.legend(markerscale=2, fontsize=7, ncol=2, loc="best", title="o source, x target",
                    title_fontsize=7)
    by_class.set_title(f"{title}: by class")
    for ax in (by_domain, by_class):
      ax.set_xticks([]), ax.set_yticks([])
  fig.tight_layout()
  _save(fig, path)


def _curves(path, history: dict[str, list[dict[str, float]]]) -> None:
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(len(history), 2, figsize=(12, 3.6 * len(history)), squeeze=False)
  for (stage, rows), (left, right) in zip(history.items(), axes):
    steps = [row["step"] for row in rows]
    for key in sorted({k for row in rows for k in row} - {"step"}):
      ax = right if "accuracy" in key else left
      ax.plot(steps, [row.get(key, np.nan) for row in rows], label=key, marker=".")
    left.set_title(f"{stage}: losses and weights")
    right.set_title(f"{stage}: accuracies (target: monitor only, never selects)")
    right.set_ylim(0, 1.02)
    for ax in (left, right):
      ax.set_xlabel("step")
      if ax.lines:
        ax.legend(fontsize=8)
  fig.tight_layout()
  _save(fig, path)


def confusion_counts(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
  """counts[i, j]: how many images of class i were predicted as class j."""
  counts = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(counts, (np.asarray(labels), np.asarray(predicted)), 1)
  return counts


def evens_shares(cfg) -> bool:
  """Whether a stage of this run trained with information maximisation, whose diversity term
  pulls the predicted class shares towards even: then even shares no longer rule a sink out."""
  return bool(cfg.target_im_weight or (cfg.self_train_steps and cfg.self_train_im_weight))


def class_shares(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """shares[j]: the fraction of `labels` (true or predicted) that are class j."""
  return np.bincount(np.asarray(labels), minlength=num_classes) / max(len(labels), 1)


def _confusion(path, panels: list[tuple[str, np.ndarray]], class_names, split: str) -> None:
  import matplotlib.pyplot as plt
  k = len(class_names)
  side = 1.5 + 0.5 * k
  fig, axes = plt.subplots(1, len(panels), figsize=(side * len(panels), side),
                           squeeze=False, layout="compressed")
  for ax, (label, counts) in zip(axes[0], panels):
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    if k <= 20:
      for i in range(k):
        for j in range(k):
          ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                  color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), class_names, rotation=90 if k > 10 else 0)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{label} on {split}: "
                 f"{100 * np.trace(counts) / max(counts.sum(), 1):.2f}% correct")
  _save(fig, path)


def _save(fig, path: str) -> None:
  import matplotlib.pyplot as plt
  fig.savefig(path + ".tmp.png", dpi=100)  # Renamed when whole: no half-written PNG.
  os.replace(path + ".tmp.png", path)
  plt.close(fig)


def _markdown(workdir, cfg, summary, finished, shares, drawn) -> str:
  method_fields = sorted(cfg.stage_fields())
  lines = [f"# {cfg.source} -> {cfg.target}: {cfg.method}, seed {cfg.seed}", "",
           f"Commit {summary['commit']}, device {summary['device']}. Repeat or vary it with "
           f"`python experiments/run.py --config {os.path.join(workdir, 'config.json')} "
           f"[--seed N ...]`.", "", "## Target accuracy", "",
           f"| model | target {cfg.eval_split} accuracy |", "|---|---|"]
  for done in finished:
    value = summary[f"{done.stage.label}_accuracy"]
    lines.append(f"| {done.stage.label} | {100 * value:.2f}% |")
  lines += ["", "Each is the model at its stage's last step; no model, step or setting was "
            "chosen with target labels.", "", "## Stages", "",
            "| stage | steps | training time | commit | checkpoints |", "|---|---|---|---|---|"]
  for done in finished:
    name = done.stage.name
    seconds = summary.get(f"{name}_seconds")
    folder = os.path.join(workdir, name)
    saved = sorted((int(d) for d in os.listdir(folder) if d.isdigit()), reverse=True) \
        if os.path.isdir(folder) else []
    lines.append(f"| {name} | {done.stage.num_steps} | "
                 f"{'unknown' if seconds is None else f'{seconds:.1f} s'} | "
                 f"{summary.get(f'{name}_commit')} | {name}/ (steps "
                 f"{', '.join(map(str, saved)) or 'none'}) |")
  lines += ["", f"## Predicted classes on the target {cfg.eval_split} split (no target label "
            f"read)", "",
            "A class that takes a much larger share of the target than of the source can be a "
            "sink: adaptation mapping target images of many classes onto one source class. The "
            "target's own class sizes are unknown and may differ from the source's, so this is "
            "a thing to look at, not a test.", "",
            "| | largest share | smallest share |", "|---|---|---|"]
  for label, share in shares:
    top, bottom = int(np.argmax(share)), int(np.argmin(share))
    lines.append(f"| {label} | {cfg.class_names[top]}: {100 * share[top]:.1f}% | "
                 f"{cfg.class_names[bottom]}: {100 * share[bottom]:.1f}% |")
  if evens_shares(cfg):
    lines += ["", "This run trained with information maximisation, whose diversity term pulls "
              "the predicted shares towards even: even shares here do not rule a sink out "
              "(docs/results.md, the fifth preset)."]
  if summary.get("discriminator_collapse"):
    lines += ["", f"**Discriminator collapse reported:** {summary['discriminator_collapse']}"]
  lines += ["", "## Config (the fields this method reads)", "", "| field | value |", "|---|---|"]
  lines += [f"| {name} | {getattr(cfg, name)} |" for name in method_fields]
  lines += ["", f"Metrics of every progress line: `{metrics.METRICS_FILE}` (JSON lines) and "
            f"`{metrics.TENSORBOARD_DIR}/` (`tensorboard --logdir {workdir}`).", ""]
  for name, caption in drawn:
    lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
  return "\n".join(lines)
