"""Run the quantization tests on one thread: their models are tiny, so more threads
only add synchronisation, and under a loaded machine they made the tests 5-10x slower."""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
