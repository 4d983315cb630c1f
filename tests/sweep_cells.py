"""Module-level cell functions for tests/test_sweep.py (importable by worker processes)."""
import time

import numpy as np


def noisy_mean(config, seed):
    """A small random computation whose result depends on the config and the cell seed."""
    rng = np.random.default_rng(seed)
    draws = rng.normal(config["mu"], config["sigma"], size=1000)
    return {"mean": float(draws.mean()), "sd": float(draws.std())}


def two_rows(config, seed):
    rng = np.random.default_rng(seed)
    return [{"part": p, "value": float(rng.random()) + config["x"]} for p in ("a", "b")]


def slow_mean(config, seed):
    time.sleep(0.3)
    return noisy_mean(config, seed)
