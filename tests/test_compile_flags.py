"""Numba flags that do not depend on who compiles a kernel first.

A numba function without its own ``fastmath`` inherits the flags of the first caller that
compiles it, and numba's cache does not key on them: a sampler kernel compiled first from the
trainer's ``forward`` (fastmath) and one compiled first from ``pool_weights`` (no fastmath) gave
different bits (about 1e-15 on a Gowalla batch).  So every kernel on the trainer's path sets its
flags explicitly, and this test checks the declaration (with every caller and callee declaring
its flags, no kernel's code can depend on the order of compilation; measured before the fix:
softmax_v_kernel's LLVM IR had 168 'reassoc' markers when compiled from the trainer first and 0
when compiled from pool_weights first, and 82 either way after).
"""
import pytest
from numba.core.registry import CPUDispatcher

from theory import estimators
from training import kernels, sampling


def _dispatchers(module):
    return {name: obj for name, obj in vars(module).items()
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__}


@pytest.mark.parametrize("module", [sampling, kernels, estimators], ids=lambda m: m.__name__)
def test_every_kernel_on_the_training_path_declares_its_fastmath(module):
    found = _dispatchers(module)
    assert found, f"no numba kernels found in {module.__name__}"
    undeclared = sorted(name for name, f in found.items() if "fastmath" not in f.targetoptions)
    assert not undeclared, f"{module.__name__}: kernels without explicit fastmath: {undeclared}"
