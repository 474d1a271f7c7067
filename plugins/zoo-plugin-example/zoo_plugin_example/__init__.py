"""Example zoo plugin. zoo reads zoo.toml beside this file; code is imported only on use."""
