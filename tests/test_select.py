"""--select: the checkpoint a label-free validator prefers, kept by orbax and reported beside
the last step's and the oracle's."""
import os

import numpy as np
import pytest

from adda_jax import results, train
from adda_jax.data.loading import DataSource
from adda_jax.errors import UserError
from tests.test_train import tiny


def test_select_keeps_and_restores_the_preferred_checkpoint(raw_dir, tmp_path):
  workdir = str(tmp_path / "run")
  cfg = tiny(select="snd", adapt_steps=8, log_every=2, checkpoint_every=4)
  lines = []
  summary = train.run(cfg, workdir, DataSource("raw", raw_dir), log=lines.append)
  history = summary["adapt_history"]
  preferred = max(history, key=lambda line: line["val_snd"])
  assert summary["selected_by"] == "snd"
  assert summary["adda_selected_step"] == preferred["step"]
  # Restored from its checkpoint and measured again, the model is the one that line measured.
  assert summary["adda_selected_accuracy"] == preferred["target_accuracy"]
  oracle = max(history, key=lambda line: line["target_accuracy"])
  assert summary["adda_oracle_accuracy"] == oracle["target_accuracy"]
  assert summary["adda_oracle_step"] == oracle["step"]
  assert os.listdir(os.path.join(workdir, "adapt_selected")) == [str(preferred["step"])]
  assert not os.path.exists(os.path.join(workdir, "pretrain_selected"))  # Final stage only.
  assert any(line.startswith("[select] adda: ") and "oracle (reads target labels)" in line
             for line in lines)
  methods = [row["method"] for row in results.rows_for(summary, "cmd")]
  assert methods == ["source_only", "adda", "adda [selected: snd]",
                     "adda [oracle-selected: reads target labels]"]

  again = train.run(cfg.replace(select=""), workdir, DataSource("raw", raw_dir), fresh=True,
                    log=lambda _: None)
  assert "adda_selected_accuracy" not in again
  assert not os.path.exists(os.path.join(workdir, "adapt_selected"))  # --fresh deleted it.
  np.testing.assert_allclose(again["adda_accuracy"], summary["adda_accuracy"], atol=1e-9)


def test_unknown_validator_is_one_line():
  with pytest.raises(UserError, match="select"):
    tiny(select="accuracy").validate()
