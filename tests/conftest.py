"""Suite-wide settings.

The suite runs as two pytest-xdist workers on a 2-core machine: one torch thread per
worker avoids oversubscription (tiny models spend most of their time in thread
hand-offs otherwise). Results don't depend on it; CPU kernels are deterministic.
"""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def restore_isa():
    """For a test that switches lstmlite's kernel table: the table it found is put back
    at teardown (``LSTMLITE_ISA``'s in a forced run, which ``set_isa("auto")`` would not
    give back), before ``_kernel_table_kept`` checks."""
    import lstmlite.runtime as rt

    before = rt.isa()
    yield before
    rt.set_isa(before)


@pytest.fixture
def rebuilt_from_config():
    """``rebuild(model, kwargs)``: checks that ``model.config()`` holds each constructor
    argument of ``kwargs`` as given, then returns ``build_model(config)`` (in eval mode)
    with the model's weights loaded, for the caller to compare outputs with. Why: an
    argument dropped from the config still round-trips (the rebuilt model's config
    agrees with itself), only a non-default argument and the outputs tell."""
    from lstmlite.nn import build_model

    def rebuild(model, kwargs):
        config = model.config()
        for key, value in kwargs.items():
            assert config[key] == value, key
        rebuilt = build_model(config)
        assert rebuilt.config() == config
        rebuilt.load_state_dict(model.state_dict())
        return rebuilt.eval()

    return rebuild


@pytest.fixture(autouse=True)
def _kernel_table_kept():
    """Every test leaves lstmlite's kernel table as it found it.

    Why: ``set_isa("auto")`` picks the best table, not the one ``LSTMLITE_ISA`` forced.
    Tests that forced a table and then reset to ``"auto"`` left every later test of their
    worker on the best one, so a run with ``LSTMLITE_ISA=avx2`` ran much of the suite on
    avx512-vnni. A test that changes the table fails here (at teardown), and the table
    is put back for the tests after it.
    """
    try:
        import lstmlite.runtime as rt

        before = rt.isa()
    except Exception:  # no extension, or a bad LSTMLITE_ISA: the runtime's own tests report that
        yield
        return
    yield
    after = rt.isa()
    if after != before:
        rt.set_isa(before)
        pytest.fail(f"this test left lstmlite's kernels on {after}, not the {before} it found: take the "
                    "restore_isa fixture, which puts the table back (set_isa('auto') does not)")
