"""Writes a built-in domain as an image folder (train/<class>/*.png, test/<class>/*.png): the
layout `--source` / `--target` read for your own data, and a way to try it on real images.

python experiments/export_folder.py --domain usps --raw-dir ../shared/data --out data/usps_png
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from PIL import Image  # noqa: E402

from adda_jax import cli  # noqa: E402
from adda_jax.data.loading import DOMAINS, load_domain  # noqa: E402
from adda_jax.errors import UserError  # noqa: E402


def main() -> None:
  parser = cli.Parser(description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--domain", required=True, choices=DOMAINS)
  parser.add_argument("--out", required=True, help="folder to create")
  cli.add_data_flags(parser)
  args = parser.parse_args()
  if os.path.exists(args.out):
    raise UserError(f"{args.out} already exists; choose a new --out folder")
  splits = load_domain(args.domain, cli.data_source(args))
  # Written under a temporary name and renamed when whole: an interrupted export never
  # leaves a folder that reads as a complete domain with images missing.
  partial = f"{args.out}.partial-{os.getpid()}"
  try:
    for split, (images, labels) in splits.items():
      for index, (image, label) in enumerate(zip(images, labels)):
        folder = os.path.join(partial, split, str(int(label)))
        os.makedirs(folder, exist_ok=True)
        pixels = image[..., 0] if image.shape[-1] == 1 else image
        Image.fromarray(pixels).save(os.path.join(folder, f"{index:06d}.png"))
      print(f"[export] {args.domain} {split}: {len(images)} images into {args.out}/{split}/")
    os.rename(partial, args.out)
  except OSError as e:
    shutil.rmtree(partial, ignore_errors=True)
    raise UserError(f"cannot write the folder {args.out} ({e.strerror}); choose a writable "
                    f"--out")


if __name__ == "__main__":
  cli.main_guard(main)
