"""experiments/ablation_table.py: arms read from the commands, changes paired by seed."""
import sys

from tests.test_recipe_table import ROOT, run_table

sys.path.insert(0, ROOT)
from experiments.ablation_table import arm_of, stage1_flags  # noqa: E402

BASE = "experiments/run.py --pair mnist_usps --recipe adda_selftrain --seed 0 --workdir w"


def test_arm_is_the_self_training_flags_of_the_command():
  assert arm_of(BASE) == "recipe"
  assert arm_of(BASE + " --pseudo-weight 0 --results r.csv") == "--pseudo-weight 0"
  assert arm_of(BASE + " --augment-shift 0 --augment-noise 0") == (
      "--augment-shift 0 --augment-noise 0")
  assert arm_of(BASE + " --class-balanced --no-pictures") == "--class-balanced"


def ablation_table(rows, tmp_path):
  """The script's markdown for MNIST->USPS rows given as (method, seed, command, accuracy)."""
  header = ["pair", "method", "seed", "target_accuracy", "command"]
  return run_table("ablation_table.py", header,
                   [("mnist_usps", m, s, a, c) for m, s, c, a in rows], tmp_path / "ablation")


def test_table_pairs_each_arm_with_the_recipe_on_the_same_seeds(tmp_path):
  rows = [("adda", 0, BASE, 0.90), ("adda", 1, BASE, 0.93),
          ("adda+selftrain", 0, BASE, 0.95), ("adda+selftrain", 1, BASE, 0.97),
          ("adda+selftrain", 0, BASE + " --pseudo-weight 0", 0.93),
          ("adda+selftrain", 1, BASE + " --pseudo-weight 0", 0.96),
          ("adda+selftrain", 2, BASE + " --pseudo-weight 0", 0.99),  # no recipe seed 2
          ("adda+selftrain", 0, "experiments/run.py --pair mnist_usps --seed 0", 0.5)]
  text = ablation_table(rows, tmp_path)
  assert "| recipe | 96.00 ± 1.41 (2) | 0: 95.00, 1: 97.00 | - |" in text
  assert "| ADDA only (no stage 3) | 91.50 ± 2.12 (2) |" in text
  assert "-4.50 (-5.00, -4.00) |" in text
  assert "| --pseudo-weight 0 | 96.00 ± 3.00 (3) |" in text
  assert "-1.50 (-2.00, -1.00) |" in text  # seed 2 has no recipe run to pair with
  assert "50.00" not in text  # a run without the recipe is left out
  assert (tmp_path / "ablation.png").read_bytes()[:4] == b"\x89PNG"


def test_a_stage1_arm_shows_its_own_adda_model(tmp_path):
  shift = BASE + " --pretrain-augment-shift 2"
  assert arm_of(shift) == "--pretrain-augment-shift 2"
  rows = [("adda", 0, BASE, 0.90), ("adda+selftrain", 0, BASE, 0.95),
          ("adda", 0, shift, 0.92), ("adda+selftrain", 0, shift, 0.96),
          ("adda", 0, BASE + " --pseudo-weight 0", 0.90)]  # a stage-3 arm's copied stage 2
  text = ablation_table(rows, tmp_path)
  assert "| --pretrain-augment-shift 2 | 96.00 ± 0.00 (1) | 0: 96.00 | +1.00 (+1.00) |" in text
  assert "| ADDA only (no stage 3), --pretrain-augment-shift 2 | 92.00 ± 0.00 (1) |" in text
  assert "| ADDA only (no stage 3) | 90.00 ± 0.00 (1) |" in text
  assert "--pseudo-weight 0 |" not in text  # its ADDA row is the recipe's, not an arm


def test_a_named_recipe_is_the_arm_of_the_flags_it_stands_for(tmp_path):
  zoom = BASE.replace("adda_selftrain", "adda_selftrain_zoom")
  assert arm_of(zoom) == ("--augment-scale 1.4 --pretrain-augment-shift 2 "
                          "--pretrain-augment-scale 1.4")
  inorm = arm_of(BASE.replace("adda_selftrain", "adda_selftrain_zoom_inorm"))
  assert inorm == arm_of(zoom) + " --input-norm instance"
  assert stage1_flags(inorm).endswith("--input-norm instance")  # It changes stage 1 too.
  rows = [("adda", 0, BASE, 0.90), ("adda+selftrain", 0, BASE, 0.95),
          ("adda", 0, zoom, 0.93), ("adda+selftrain", 0, zoom, 0.97),
          ("source_only+selftrain", 0, BASE + " --method source_only", 0.84),
          ("source_only+selftrain", 0, zoom + " --method source_only", 0.98)]
  text = ablation_table(rows, tmp_path)
  assert "| stage 3 on the source model (no ADDA) | 84.00 ± 0.00 (1) |" in text
  assert ("| stage 3 on the source model (no ADDA), --augment-scale 1.4 "
          "--pretrain-augment-shift 2 --pretrain-augment-scale 1.4 | 98.00") in text
  assert ("| --augment-scale 1.4 --pretrain-augment-shift 2 --pretrain-augment-scale 1.4 | "
          "97.00 ± 0.00 (1) | 0: 97.00 | +2.00 (+2.00) |") in text
  assert ("| ADDA only (no stage 3), --pretrain-augment-shift 2 --pretrain-augment-scale 1.4 | "
          "93.00 ± 0.00 (1) |") in text
  assert "| ADDA only (no stage 3) | 90.00 ± 0.00 (1) |" in text
