"""notebooks/colab.ipynb runs top to bottom (generated data, a few steps), so it cannot rot."""
import os

import nbformat
import pytest
from PIL import Image

from tests.conftest import write_mnist, write_usps_h5

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_colab_notebook_runs(tmp_path, monkeypatch):
  nbclient = pytest.importorskip("nbclient")
  raw = tmp_path / "raw"
  write_mnist(str(raw / "mnist"))
  write_usps_h5(str(raw / "usps"))
  workdir = tmp_path / "run"
  # The kernel inherits the environment: offline TFDS preparation from the raw files.
  for name, value in {"ADDA_RAW_DIR": raw, "ADDA_NOTEBOOK_DATA_DIR": tmp_path / "tfds",
                      "ADDA_NOTEBOOK_WORKDIR": workdir, "ADDA_NOTEBOOK_STEPS": 4,
                      "ADDA_NOTEBOOK_BATCH": 8}.items():
    monkeypatch.setenv(name, str(value))
  with open(os.path.join(ROOT, "notebooks", "colab.ipynb")) as f:
    notebook = nbformat.read(f, as_version=4)
  client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": os.path.join(ROOT,
                                                                                "notebooks")}})
  client.execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  shown = [o for o in outputs if "image/png" in o.get("data", {})]
  assert len(shown) == 3  # t-SNE, curves, confusion matrix.
  assert any("adda_accuracy" in o.get("text", "") for o in outputs)
  with Image.open(workdir / "tsne.png") as image:
    assert image.size[0] > 200
