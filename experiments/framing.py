"""How large each domain's digits are in the frame, read from unlabelled training images.

python experiments/framing.py mnist usps --raw-dir ../shared/data --out results/recipe/framing

Each domain's training images at the run's size (28x28 unless --image-size), grey; per image
the box that holds its ink (pixels above 0.3 of its brightest): the domains' mean box sizes,
and the ratio of each domain's mean height to the first's, which is the zoom the
`adda_selftrain_zoom` preset covers (docs/recipe.md). Writes OUT.md (the table) and OUT.png (a
few images of each domain with their boxes, and the heights' histograms). No label is read.
"""
import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from adda_jax.cli import main_guard  # noqa: E402
from adda_jax.data import domains  # noqa: E402
from adda_jax.data.loading import DataSource  # noqa: E402
from adda_jax.data.preprocess import preprocess  # noqa: E402
from experiments.recipe_table import write  # noqa: E402

INK = 0.3  # A pixel is ink above this fraction of its image's brightest pixel.
SHOWN = 8  # Images per domain in the picture.


def ink_boxes(images: np.ndarray) -> np.ndarray:
  """[N, S, S, 1] grey images (bright ink, dark ground) -> [N, 4] boxes (top, left, bottom,
  right; inclusive pixel indices) around each image's ink. A blank image's box is its
  whole frame."""
  grey = images[..., 0]
  peak = grey.max((1, 2), keepdims=True)
  ink = grey > INK * np.where(peak > 0, peak, np.inf)
  rows, cols = ink.any(2), ink.any(1)

  def first_last(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    blank = ~lines.any(1)
    first = np.where(blank, 0, lines.argmax(1))
    last = np.where(blank, lines.shape[1] - 1, lines.shape[1] - 1 - lines[:, ::-1].argmax(1))
    return first, last

  (top, bottom), (left, right) = first_last(rows), first_last(cols)
  return np.stack([top, left, bottom, right], 1)


def sizes(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(heights, widths) in pixels of [N, 4] boxes."""
  return boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1


def markdown(measured: dict[str, np.ndarray], image_size: int) -> str:
  first = next(iter(measured))
  reference = sizes(measured[first])[0].mean()
  lines = [f"Ink boxes of the training images at {image_size}x{image_size} (pixels above "
           f"{INK} of each image's brightest; no label read):", "",
           f"| domain | images | mean height (px) | mean width (px) | height / {first}'s |",
           "|---|---|---|---|---|"]
  for name, boxes in measured.items():
    heights, widths = sizes(boxes)
    lines.append(f"| {name} | {len(boxes)} | {heights.mean():.1f} ± {heights.std():.1f} | "
                 f"{widths.mean():.1f} ± {widths.std():.1f} | "
                 f"{heights.mean() / reference:.2f} |")
  return "\n".join(lines) + "\n"


def plot(images: dict[str, np.ndarray], measured: dict[str, np.ndarray], path: str) -> None:
  fig = plt.figure(figsize=(2 + SHOWN * 1.1, 1.3 * len(images) + 2.6))
  grid = fig.add_gridspec(len(images) + 1, SHOWN, height_ratios=[1] * len(images) + [2])
  for row, (name, domain_images) in enumerate(images.items()):
    for column in range(SHOWN):
      ax = fig.add_subplot(grid[row, column])
      top, left, bottom, right = measured[name][column]
      ax.imshow(domain_images[column, ..., 0], cmap="gray")
      ax.add_patch(plt.Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1,
                                 fill=False, color="tab:orange", lw=1))
      ax.set_xticks([]), ax.set_yticks([])
      if column == 0:
        ax.set_ylabel(name)
  ax = fig.add_subplot(grid[-1, :])
  size = next(iter(images.values())).shape[1]
  for name, boxes in measured.items():
    heights = sizes(boxes)[0]
    ax.hist(heights, bins=np.arange(0.5, size + 1), alpha=0.6, density=True,
            label=f"{name}: mean {heights.mean():.1f} px")
  lowest = min(sizes(boxes)[0].min() for boxes in measured.values())
  ax.set_xlim(max(lowest - 2, 0), size + 1)
  ax.set_xlabel(f"ink height in the {size}x{size} frame (pixels)")
  ax.set_ylabel("share of images")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("domains", nargs="+", help="built-in domains, e.g. mnist usps")
  parser.add_argument("--raw-dir", help="the raw files' folder (as run.py's --raw-dir)")
  parser.add_argument("--data-dir", help="TFDS's data folder (as run.py's --data-dir)")
  parser.add_argument("--data-source", default="raw", choices=("raw", "tfds"))
  parser.add_argument("--image-size", type=int, default=28)
  parser.add_argument("--out", default=os.path.join("results", "recipe", "framing"))
  args = parser.parse_args()
  data = DataSource(source=args.data_source, raw_dir=args.raw_dir, data_dir=args.data_dir)
  images = {}
  for name in args.domains:
    classes = domains.class_names(name, data)
    raw = domains.load(name, data, classes, args.image_size, 1)["train"][0]
    images[name] = preprocess(raw, args.image_size, 1)
  measured = {name: ink_boxes(domain_images) for name, domain_images in images.items()}
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  write(args.out, markdown(measured, args.image_size),
        lambda path: plot(images, measured, path))


if __name__ == "__main__":
  main_guard(main)
