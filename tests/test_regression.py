"""Regression guard: short runs on generated data compute what the code computed when the
numbers in tests/data/regression.json were recorded (before the method registry).

Recorded on the dev machine with `python -m tests.test_regression`; checked within a tight
float tolerance, since CPUs of this machine kind differ in the last bits: losses to 1e-4
relative, accuracies to one example of the 48 generated test images.
"""
import json
import os
import sys
import tempfile

import numpy as np
import pytest

from adda_jax import train
from adda_jax.data.loading import DataSource
from tests import conftest
from tests.test_train import tiny

RECORD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "regression.json")
CASES = {
    "source_only": dict(method="source_only"),
    "adda": dict(),
    "adda_minimax_logits_simultaneous": dict(adversarial_loss="minimax", disc_input="logits",
                                             adapt_update="simultaneous"),
}
ONE_EXAMPLE = 1 / 48 + 1e-9
KEPT = ("pretrain_history", "adapt_history", "source_only_accuracy", "adda_accuracy")


def measure(raw_dir: str, workdir: str, name: str) -> dict:
  cfg = tiny(pretrain_steps=20, adapt_steps=20, log_every=5, checkpoint_every=10, **CASES[name])
  summary = train.run(cfg, workdir, DataSource("raw", raw_dir), log=lambda _: None)
  return {k: summary[k] for k in KEPT if k in summary}


@pytest.mark.parametrize("name", sorted(CASES))
def test_metrics_match_the_recorded_ones(raw_dir, tmp_path, name):
  with open(RECORD) as f:
    recorded = json.load(f)[name]
  measured = measure(raw_dir, str(tmp_path / name), name)
  assert sorted(measured) == sorted(recorded)
  for key, value in recorded.items():
    if isinstance(value, list):
      # Every recorded metric is still there (metrics added since, such as the label-free
      # validators, may sit beside them).
      assert all(set(want) <= set(got) for got, want in zip(measured[key], value)), key
      assert len(measured[key]) == len(value), key
      for got, want in zip(measured[key], value):
        for metric in want:
          close(got[metric], want[metric], metric)
    else:
      close(measured[key], value, key)


def close(got: float, want: float, name: str) -> None:
  if name.endswith("accuracy"):
    np.testing.assert_allclose(got, want, atol=ONE_EXAMPLE, err_msg=name)
  else:
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=name)


def record() -> None:
  with tempfile.TemporaryDirectory() as root:
    raw = os.path.join(root, "raw")
    conftest.write_mnist(os.path.join(raw, "mnist"))
    conftest.write_usps_h5(os.path.join(raw, "usps"))
    out = {name: measure(raw, os.path.join(root, name), name) for name in sorted(CASES)}
  with open(RECORD, "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
  print(f"wrote {RECORD}", file=sys.stderr)


if __name__ == "__main__":
  record()
