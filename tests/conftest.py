import numpy as np
import pytest


@pytest.fixture
def f32():
    return np.float32
