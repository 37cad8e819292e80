"""The synthetic Hanzhong-like world: the foundation of every test, demo and evaluation."""
