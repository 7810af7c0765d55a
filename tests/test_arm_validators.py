"""experiments/arm_validators.py: arms named from configs, picks per seed, ties, the oracle."""
import json
import os
import subprocess
import sys

from adda_jax.configs import get_config
from adda_jax.configs.recipes import apply_recipe
from tests.test_recipe_table import ROOT


def write_run(folder, seed, accuracy, snd, source_accuracy, **changes):
  cfg = apply_recipe(get_config("mnist_usps"), "adda_selftrain").replace(seed=seed, **changes)
  os.makedirs(folder)
  line = {"step": 5000, "target_accuracy": accuracy, "val_entropy": 0.1, "val_im": 2.0,
          "val_bnm": 0.1, "val_snd": snd, "val_source_accuracy": source_accuracy}
  with open(os.path.join(folder, "summary.json"), "w") as f:
    json.dump({"config": cfg.to_json(), "selftrain_history": [line]}, f)


def test_each_validator_picks_per_seed_over_complete_seeds_and_ties_average(tmp_path):
  for seed, (base, arm) in enumerate([(0.95, 0.97), (0.96, 0.94)]):
    write_run(tmp_path / "recipe" / f"seed{seed}", seed, base, snd=5.0, source_accuracy=0.99)
    write_run(tmp_path / "no_pseudo" / f"seed{seed}", seed, arm, snd=4.0,
              source_accuracy=0.99000003, pseudo_weight=0.0)  # float32's 0.99
  write_run(tmp_path / "recipe" / "seed2", 2, 0.5, snd=5.0, source_accuracy=0.99)  # alone
  out = tmp_path / "arms"
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, "experiments/arm_validators.py"),
       *(str(p) for p in sorted(tmp_path.glob("*/seed*"))), "--out", str(out)],
      capture_output=True, text=True, cwd=ROOT)
  assert result.returncode == 0, result.stderr
  text = (tmp_path / "arms.md").read_text()
  assert "2 arms, seeds 0, 1; the fixed recipe 95.50%" in text  # seed 2 ran one arm only
  assert ("| oracle (READS TARGET LABELS; a bound, not a result) | 0: pseudo_weight=0.0; "
          "1: recipe | 96.50 | +0.00 | - |") in text
  assert "| snd | 0: recipe; 1: recipe | 95.50 | -1.00 | +0.00 |" in text
  # Equal source accuracies: each seed counts the tied arms' mean.
  assert ("| source_accuracy | 0: no_pseudo = recipe; 1: no_pseudo = recipe".replace(
      "no_pseudo", "pseudo_weight=0.0") in text)
  assert "| 95.50 | -1.00 |" in text.split("source_accuracy")[1]
  assert (tmp_path / "arms.csv").read_text().count("mnist_usps,") == 5


def run_script(tmp_path):
  return subprocess.run(
      [sys.executable, os.path.join(ROOT, "experiments/arm_validators.py"),
       *(str(p) for p in sorted(tmp_path.glob("*/seed*"))), "--out", str(tmp_path / "arms")],
      capture_output=True, text=True, cwd=ROOT)


def test_a_stage1_regulariser_is_an_arm(tmp_path):
  write_run(tmp_path / "recipe" / "seed0", 0, 0.95, snd=5.0, source_accuracy=0.99)
  write_run(tmp_path / "shift" / "seed0", 0, 0.96, snd=6.0, source_accuracy=0.99,
            pretrain_augment_shift=2)  # SND prefers the higher score
  result = run_script(tmp_path)
  assert result.returncode == 0, result.stderr
  assert "| snd | 0: pretrain_augment_shift=2 | 96.00 |" in (tmp_path / "arms.md").read_text()


def test_two_runs_of_one_arm_and_seed_are_refused_in_one_line(tmp_path):
  for name in ("a", "b"):
    write_run(tmp_path / name / "seed0", 0, 0.95, snd=5.0, source_accuracy=0.99)
  result = run_script(tmp_path)
  assert result.returncode == 2
  assert "are the same arm (recipe) and seed (0); pass one of them" in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1


def test_a_validator_with_no_reading_passes_over_that_arm(tmp_path):
  """A NaN reading (DEV on separable features) ranks last instead of breaking the pick."""
  write_run(tmp_path / "recipe" / "seed0", 0, 0.95, snd=float("nan"), source_accuracy=0.99)
  write_run(tmp_path / "shift" / "seed0", 0, 0.96, snd=4.0, source_accuracy=0.99,
            pretrain_augment_shift=2)
  result = run_script(tmp_path)
  assert result.returncode == 0, result.stderr
  assert "| snd | 0: pretrain_augment_shift=2 | 96.00 | +0.00 | +1.00 |" in (
      tmp_path / "arms.md").read_text()
