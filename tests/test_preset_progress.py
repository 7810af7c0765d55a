"""experiments/preset_progress.py: each preset's own runs only, its gap to the bar, a PNG."""
from tests.test_recipe_table import run_table

HEADER = ["pair", "method", "seed", "target_accuracy", "command"]
RUN = "experiments/run.py --pair mnist_usps --recipe "


def test_each_preset_in_order_with_its_gap_and_no_arm_rows(tmp_path):
  rows = [
      ("adda+selftrain", 0, 0.97, RUN + "adda_selftrain_zoom_inorm --seed 0"),
      ("adda+selftrain", 1, 0.98, RUN + "adda_selftrain_zoom_inorm --seed 1"),
      ("adda", 0, 0.96, RUN + "adda_selftrain_zoom_inorm --seed 0"),
      ("adda+selftrain", 0, 0.10, RUN + "adda_selftrain --seed 0"),
      ("adda+selftrain", 0, 0.95, RUN + "adda_selftrain --seed 0"),  # the rerun's row wins
      ("adda+selftrain", 1, 0.20, RUN + "adda_selftrain --seed 1 --pseudo-weight 0"),  # an arm
      ("source_only+selftrain", 1, 0.30, RUN + "adda_selftrain --method source_only"),
      ("adda+selftrain", 2, 0.40, "experiments/run.py --pair mnist_usps --seed 2"),
  ]
  text = run_table("preset_progress.py", HEADER, [("mnist_usps", *row) for row in rows],
                   tmp_path / "presets")
  lines = [line for line in text.splitlines() if line.startswith("| `")]
  assert [line.split("`")[1] for line in lines] == ["adda_selftrain",
                                                    "adda_selftrain_zoom_inorm"]
  assert "| **95.00** (seed 0), -3.50 |" in lines[0]
  assert "**97.50 ± 0.71** (seeds 0-1), -1.00<br>ADDA 96.00" in lines[1]
  assert "MNIST->USPS (bar 98.5)" in text
  assert (tmp_path / "presets.png").read_bytes()[:4] == b"\x89PNG"
