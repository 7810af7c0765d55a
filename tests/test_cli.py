"""Bad input gives one line on stderr and a non-zero exit, never a traceback."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, script="experiments/run.py"):
  return subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)


def assert_one_line_error(result, pattern):
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr[-2000:]
  assert pattern in lines[0], lines[0]


def test_unknown_pair_lists_valid_ones():
  assert_one_line_error(run_cli("--pair", "mnist_svhn"),
                        "unknown pair 'mnist_svhn'; choose one of svhn_mnist, mnist_usps")


@pytest.mark.parametrize("flag,value,message", [
    ("--pretrain-steps", "0", "--pretrain-steps must be a positive integer"),
    ("--batch-size", "-4", "--batch-size must be a positive integer"),
    ("--adapt-lr", "0", "--adapt-lr must be a positive finite number"),
    ("--adapt-lr", "nan", "--adapt-lr must be a positive finite number"),
    ("--adversarial-loss", "wgan", "unknown adversarial loss 'wgan'"),
    ("--method", "dan", "unknown method 'dan'; choose one of source_only, target_oracle, adda"),
    ("--pixel-scale", "0", "--pixel-scale must be a positive finite number"),
    ("--pixel-scale", "inf", "--pixel-scale must be a positive finite number"),
    ("--image-size", "12", "--image-size must be a multiple of 4 and at least 16"),
    ("--image-size", "30", "--image-size must be a multiple of 4 and at least 16"),
    ("--image-size", "17", "--image-size must be a multiple of 4 and at least 16"),
    ("--seed", str(2**70), "--seed must be an integer in 0..4294967295"),
    ("--seed", "-1", "--seed must be an integer in 0..4294967295"),
    ("--pretrain-solver", "sgd", "unknown pretrain solver 'sgd'; choose one of adam, caffe_lenet"),
])
def test_bad_values(flag, value, message, tmp_path):
  assert_one_line_error(run_cli("--pair", "mnist_usps", flag, value, "--workdir",
                                str(tmp_path / "run")), message)
  assert not (tmp_path / "run").exists()


def test_missing_raw_files_are_named_and_nothing_is_written(tmp_path):
  result = run_cli("--pair", "mnist_usps", "--data-source", "raw", "--raw-dir", str(tmp_path),
                   "--workdir", str(tmp_path / "run"))
  assert_one_line_error(result, "train-images-idx3-ubyte.gz")
  assert not (tmp_path / "run").exists()


def test_bad_flag_writes_nothing(tmp_path):
  assert_one_line_error(run_cli("--pair", "usps_mnist", "--adapt-steps", "-1", "--workdir",
                                str(tmp_path / "run")), "--adapt-steps")
  assert not (tmp_path / "run").exists()


def test_evaluate_without_a_run(tmp_path):
  assert_one_line_error(run_cli("--workdir", str(tmp_path), script="experiments/evaluate.py"),
                        "holds no run")


def test_flags_map_onto_the_preset():
  from adda_jax import cli
  parser = cli.Parser()
  cli.add_run_flags(parser)
  preset = cli.config_from_args(parser.parse_args(["--pair", "usps_mnist"]))
  assert (preset.source_subset, preset.target_subset, preset.monitor_target) == (1800, 2000, True)
  assert preset.conv_relu is True  # The released code's LeNet
  explicit = parser.parse_args(["--pair", "usps_mnist", "--conv-relu"])
  assert cli.config_from_args(explicit) == preset
  changed = cli.config_from_args(parser.parse_args(
      ["--pair", "usps_mnist", "--full-sets", "--rgb32", "--no-target-monitor", "--seed", "3",
       "--no-conv-relu"]))
  assert changed == preset.replace(source_subset=None, target_subset=None, image_size=32,
                                   channels=3, monitor_target=False, seed=3, conv_relu=False)
  code_input = cli.config_from_args(parser.parse_args(
      ["--pair", "usps_mnist", "--image-size", "32", "--pixel-scale", "255"]))
  assert code_input == preset.replace(image_size=32, pixel_scale=255.0)
  # Both change the source model, so a stage-2 sweep may not reuse one across them.
  assert code_input.pretrain_fields() != preset.pretrain_fields()
  caffe = cli.config_from_args(parser.parse_args(
      ["--pair", "usps_mnist", "--pretrain-solver", "caffe_lenet"]))
  assert caffe == preset.replace(pretrain_solver="caffe_lenet")
  assert caffe.pretrain_fields() != preset.pretrain_fields()


def test_rgb32_with_another_image_size_is_refused():
  assert_one_line_error(run_cli("--pair", "mnist_mnistm", "--rgb32", "--image-size", "28"),
                        "--rgb32 means 32x32 RGB")


def test_adam_rate_with_the_caffe_solver_is_refused():
  assert_one_line_error(run_cli("--pair", "mnist_usps", "--pretrain-solver", "caffe_lenet",
                                "--pretrain-lr", "0.1"), "--pretrain-lr sets Adam's rate")


def test_input_norm_flag_and_recipe():
  from adda_jax import cli
  from adda_jax.errors import UserError
  parser = cli.Parser()
  cli.add_run_flags(parser)
  cfg = cli.config_from_args(parser.parse_args(["--pair", "mnist_usps", "--input-norm",
                                                "instance"]))
  assert cfg.validate().input_norm == "instance"
  zoom = cli.config_from_args(parser.parse_args(["--pair", "mnist_mnistm", "--recipe",
                                                 "adda_selftrain_zoom"]))
  inorm = cli.config_from_args(parser.parse_args(["--pair", "mnist_mnistm", "--recipe",
                                                  "adda_selftrain_zoom_inorm"]))
  assert inorm == zoom.replace(input_norm="instance")
  im = cli.config_from_args(parser.parse_args(["--pair", "mnist_mnistm", "--recipe",
                                               "adda_selftrain_zoom_inorm_im"]))
  assert im == inorm.replace(self_train_im_weight=1.0)
  im_adapt = cli.config_from_args(parser.parse_args(["--pair", "mnist_mnistm", "--recipe",
                                                     "adda_selftrain_zoom_inorm_im_adapt"]))
  assert im_adapt == im.replace(target_im_weight=1.0)
  dtn = cli.config_from_args(parser.parse_args(["--pair", "mnist_usps", "--recipe",
                                                "adda_selftrain_zoom_inorm_im_adapt_dtn"]))
  assert (dtn.encoder, dtn.image_size, dtn.channels) == ("dtn", 32, 3)
  mnistm_flags = ["--pair", "mnist_mnistm", "--rgb32", "--encoder", "dtn", "--recipe"]
  assert (cli.config_from_args(parser.parse_args(mnistm_flags + [
      "adda_selftrain_zoom_inorm_im_adapt_dtn"])) == cli.config_from_args(parser.parse_args(
          mnistm_flags + ["adda_selftrain_zoom_inorm_im_adapt"])))  # MNIST-M's runs are shared
  with pytest.raises(UserError, match="unknown input_norm 'batch'; choose one of none, instance"):
    cfg.replace(input_norm="batch").validate()
