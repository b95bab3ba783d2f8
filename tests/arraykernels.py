"""User kernels written against other array libraries, for the tests of framework arrays.

The array-API ones name ``xp`` (array_api_strict), from which the harness detects their
library; the torch and JAX ones import their framework inside the function, so that this
module imports without them and the harness has to find the library by trying.
"""

import array_api_strict as xp
import numpy as np


def xp_sigmoid(x):
    return 1 / (1 + xp.exp(-x))


def np_sigmoid(x):
    # xp_sigmoid's formula in NumPy, which array_api_strict wraps: the same bits
    return 1 / (1 + np.exp(-x))


def xp_sigmoid_writing_its_input(x):
    y = 1 / (1 + xp.exp(-x))
    x[...] = 0.0
    return y


def torch_reglu(a, b):
    import torch.nn.functional as F

    return a * F.relu(b)


def torch_softmax(x, temperature=1.0):
    import torch.nn.functional as F

    return F.softmax(x / temperature, dim=-1)  # the torch peer's expression


def jax_reglu(a, b):
    import jax

    return a * jax.nn.relu(b)


def jax_sigmoid_of_numpy(x):
    import jax

    return jax.nn.sigmoid(x)  # takes NumPy input, returns a jax.Array


def torch_sigmoid_of_numpy(x):
    import torch

    return torch.sigmoid(torch.as_tensor(x))  # takes NumPy input, returns a tensor
