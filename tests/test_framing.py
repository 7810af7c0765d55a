"""experiments/framing.py: ink boxes of unlabelled images, the domains' size ratio."""
import os
import subprocess
import sys

import numpy as np

from tests.test_recipe_table import ROOT

sys.path.insert(0, ROOT)
from experiments.framing import ink_boxes, markdown, sizes  # noqa: E402


def test_ink_box_holds_the_bright_pixels_and_ignores_faint_ground():
  images = np.full((3, 12, 12, 1), 0.2, np.float32)  # Ground at 0.2 of the brightest ink.
  images[0, 3:9, 4:6] = 1.0  # A 6 x 2 stroke.
  images[1] = 0.1
  images[1, 0:12, 5:11] = 0.5  # Dim ink fills the height: the threshold is per image.
  images[2] = 0.0  # Blank: its box is the whole frame.
  boxes = ink_boxes(images)
  np.testing.assert_array_equal(boxes, [[3, 4, 8, 5], [0, 5, 11, 10], [0, 0, 11, 11]])
  heights, widths = sizes(boxes)
  np.testing.assert_array_equal(heights, [6, 12, 12])
  np.testing.assert_array_equal(widths, [2, 6, 12])


def test_table_gives_each_domain_its_height_ratio_to_the_first():
  small = np.array([[4, 4, 23, 19]] * 3)  # Height 20, width 16.
  large = np.array([[0, 4, 27, 23]] * 2)  # Height 28.
  text = markdown({"mnist": small, "usps": large}, 28)
  assert "| mnist | 3 | 20.0 ± 0.0 | 16.0 ± 0.0 | 1.00 |" in text
  assert "| usps | 2 | 28.0 ± 0.0 | 20.0 ± 0.0 | 1.40 |" in text


def test_command_reads_raw_files_and_writes_table_and_picture(raw_dir, tmp_path):
  out = tmp_path / "framing"
  result = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "framing.py"),
                           "mnist", "usps", "--raw-dir", raw_dir, "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
  assert result.returncode == 0, result.stderr
  # The generated digits are a 2-pixel bright bar across the frame but 2 pixels each side.
  table = (out.parent / "framing.md").read_text()
  assert "| mnist | 96 | 2.0 ± 0.0 | 24.0 ± 0.0 | 1.00 |" in table
  assert (out.parent / "framing.png").read_bytes()[:4] == b"\x89PNG"
