"""Digit domains: raw-format readers, TFDS builders, preprocessing and on-device datasets."""
