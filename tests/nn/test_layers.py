"""lstmlite.nn.LSTM / GRU against torch.nn.LSTM / nn.GRU (the independent oracle)."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmlite.nn import GRU, LSTM, from_torch, stack_state

CASES = [
    # (cls, num_layers, bidirectional, proj_size)
    (torch.nn.LSTM, 1, False, 0),
    (torch.nn.LSTM, 2, True, 0),
    (torch.nn.LSTM, 2, False, 3),
    (torch.nn.LSTM, 1, True, 4),
    (torch.nn.GRU, 1, False, 0),
    (torch.nn.GRU, 3, True, 0),
]


def _torch_module(cls, layers, bidir, proj):
    torch.manual_seed(layers * 7 + bidir + proj)
    extra = {"proj_size": proj} if proj else {}
    return cls(5, 7, num_layers=layers, batch_first=True, bidirectional=bidir, **extra).double()


def _states(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("cls,layers,bidir,proj", CASES)
def test_from_torch_matches_outputs_states_and_gradients(cls, layers, bidir, proj):
    ref = _torch_module(cls, layers, bidir, proj)
    ours = from_torch(ref)
    assert isinstance(ours, LSTM if cls is torch.nn.LSTM else GRU)
    assert dict(ours.named_parameters()).keys() == dict(ref.named_parameters()).keys()
    x = torch.randn(3, 6, 5, dtype=torch.double)
    ref_out, ref_state = ref(x)
    out, state = ours(x)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12)
    for a, b in zip(_states(stack_state(state)), _states(ref_state)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # gradients reach our plain parameters exactly as torch's
    (out.square().sum()).backward()
    (ref_out.square().sum()).backward()
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, dict(ref.named_parameters())[name].grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls,layers,bidir,proj", CASES)
def test_variable_lengths_equal_each_sequence_alone(cls, layers, bidir, proj):
    ours = from_torch(_torch_module(cls, layers, bidir, proj))
    lengths = torch.tensor([6, 2, 4, 1])
    x = torch.randn(4, 6, 5, dtype=torch.double)
    out, state = ours(x, lengths=lengths)
    stacked = _states(stack_state(state))
    for b, n in enumerate(lengths.tolist()):
        alone, alone_state = ours(x[b:b + 1, :n])
        torch.testing.assert_close(out[b, :n], alone[0], rtol=0, atol=1e-12)
        assert torch.all(out[b, n:] == 0), "padded steps must give zero output"
        for a, s in zip(stacked, _states(stack_state(alone_state))):
            torch.testing.assert_close(a[:, b], s[:, 0], rtol=0, atol=1e-12)


def test_packed_input_and_initial_state_match_torch():
    ref = _torch_module(torch.nn.LSTM, 2, True, 0)
    ours = from_torch(ref)
    x = torch.randn(3, 5, 5, dtype=torch.double)
    h0 = torch.randn(4, 3, 7, dtype=torch.double)
    c0 = torch.randn(4, 3, 7, dtype=torch.double)
    packed = pack_padded_sequence(x, torch.tensor([2, 5, 3]), batch_first=True, enforce_sorted=False)
    ref_out, (h, c) = ref(packed, (h0, c0))
    out, state = ours(packed, (h0, c0))
    torch.testing.assert_close(pad_packed_sequence(out, batch_first=True)[0],
                               pad_packed_sequence(ref_out, batch_first=True)[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(stack_state(state)[0], h, rtol=0, atol=1e-12)
    torch.testing.assert_close(stack_state(state)[1], c, rtol=0, atol=1e-12)


def test_time_major_input():
    ref = torch.nn.GRU(4, 6, batch_first=False).double()
    ours = from_torch(ref)
    x = torch.randn(7, 2, 4, dtype=torch.double)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], rtol=0, atol=1e-12)


def test_uneven_hidden_sizes_per_layer():
    lstm = LSTM(input_size=4, hidden_size=[8, 5], num_layers=2, bidirectional=True)
    out, state = lstm(torch.randn(2, 3, 4))
    assert out.shape == (2, 3, 10)
    assert state[0][0].shape == (2, 2, 8) and state[1][1].shape == (2, 2, 5)
    assert lstm.weight_ih_l1.shape == (20, 16)
    assert LSTM.from_config(lstm.config()).config() == lstm.config()


def test_parametrized_weights_are_used_and_trained():
    """A mask parametrization changes the output and the masked weight keeps learning
    (the pytorch#33618 trap: compressing nn.LSTM's flat weights stops updates)."""
    from torch.nn.utils import parametrize

    class Mask(torch.nn.Module):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", mask)

        def forward(self, w):
            return w * self.mask

    lstm = LSTM(input_size=3, hidden_size=4)
    x = torch.randn(2, 5, 3)
    before = lstm(x)[0].detach()
    mask = (torch.rand_like(lstm.weight_hh_l0) > 0.5).float()
    parametrize.register_parametrization(lstm, "weight_hh_l0", Mask(mask))
    assert not torch.allclose(lstm(x)[0], before)
    original = lstm.parametrizations.weight_hh_l0.original
    snapshot = original.detach().clone()
    opt = torch.optim.SGD(lstm.parameters(), lr=0.5)
    lstm(x)[0].sum().backward()
    opt.step()
    changed = (original.detach() != snapshot) & (mask > 0)
    assert changed.any(), "surviving weights must still be updated"
    assert torch.all(lstm.weight_hh_l0[mask == 0] == 0)


def test_macs_per_step_hand_count():
    assert LSTM(40, 128).macs_per_step() == 4 * 128 * (40 + 128)
    assert GRU(10, 8, num_layers=2, bidirectional=True).macs_per_step() == 2 * (3 * 8 * (10 + 8) + 3 * 8 * (16 + 8))
    assert LSTM(10, 8, proj_size=4).macs_per_step() == 4 * 8 * (10 + 4) + 4 * 8


@pytest.mark.parametrize("kwargs,message", [
    ({"input_size": 0, "hidden_size": 4}, "input_size"),
    ({"input_size": 3, "hidden_size": [4, 4], "num_layers": 1}, "num_layers"),
    ({"input_size": 3, "hidden_size": 4, "proj_size": 4}, "proj_size"),
    ({"input_size": 3, "hidden_size": 4, "dropout": 1.5}, "dropout"),
    ({"input_size": 3, "hidden_size": 4, "dropout": -0.1}, "dropout"),
    ({"input_size": 3, "hidden_size": 4, "proj_size": -1}, "proj_size"),
    ({"input_size": 3, "hidden_size": [4, 0], "num_layers": 2}, "hidden sizes must be positive"),
    ({"input_size": 3, "hidden_size": 4, "num_layers": 0}, r"^num_layers must be at least 1, got 0$"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LSTM(**kwargs)


def test_bad_input_shapes_are_clear_errors():
    lstm = LSTM(3, 4)
    with pytest.raises(ValueError, match="3-D"):
        lstm(torch.randn(5, 3))
    with pytest.raises(ValueError, match="expects 3 input features"):
        lstm(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="lengths"):
        lstm(torch.randn(2, 5, 3), lengths=torch.tensor([6, 1]))
    with pytest.raises(TypeError):
        from_torch(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("cls,layers,bidir,proj", CASES)
@pytest.mark.parametrize("fill", [None, float("nan"), 1e6])
def test_padded_batches_give_packed_gradients(cls, layers, bidir, proj, fill):
    """The no-packing path for padded CPU batches (saturated gates hold the state)
    must give the same outputs, final states and gradients as torch's packed path,
    whatever the padding holds: torch never reads it, and a NaN or a 1e6 there must
    change nothing either (a 1e6 input would swamp the +-1e4 columns that freeze the
    state on padded steps)."""
    ref = _torch_module(cls, layers, bidir, proj)
    ours = from_torch(ref)
    lengths = torch.tensor([6, 2, 4, 1])
    x = torch.randn(4, 6, 5, dtype=torch.double)
    padded = (torch.arange(6)[None, :, None] >= lengths[:, None, None]).expand_as(x)
    if fill is not None:
        x = torch.where(padded, torch.tensor(fill, dtype=torch.double), x)
    x.requires_grad_(True)
    weights = torch.randn(4, 6, ours.output_size, dtype=torch.double)
    out, state = ours(x, lengths=lengths)
    loss = (out * weights).sum() + sum(t.square().sum() for t in _states(stack_state(state)))
    grads = torch.autograd.grad(loss, [x, *ours.parameters()])

    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    ref_out, ref_state = ref(packed)
    ref_out = pad_packed_sequence(ref_out, batch_first=True, total_length=6)[0]
    ref_loss = (ref_out * weights).sum() + sum(t.square().sum() for t in _states(ref_state))
    ref_grads = torch.autograd.grad(ref_loss, [x, *ref.parameters()])
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12)
    for a, b in zip(_states(stack_state(state)), _states(ref_state)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    for ours_grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(ours_grad, ref_grad, rtol=1e-9, atol=1e-11)
    assert torch.equal(grads[0][padded], torch.zeros(int(padded.sum()), dtype=torch.double))


@pytest.mark.parametrize("cls", [torch.nn.LSTM, torch.nn.GRU])
def test_stacked_bidirectional_initial_state_matches_torch(cls):
    ref = _torch_module(cls, 3, True, 0)
    ours = from_torch(ref)
    x = torch.randn(2, 4, 5, dtype=torch.double)
    h0 = torch.randn(6, 2, 7, dtype=torch.double)  # (L*D, B, H): layer k owns rows 2k, 2k + 1
    state = (h0, torch.randn_like(h0)) if cls is torch.nn.LSTM else h0
    ref_out, ref_state = ref(x, state)
    out, final = ours(x, state)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12)
    for a, b in zip(_states(stack_state(final)), _states(ref_state)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", [torch.nn.LSTM, torch.nn.GRU])
def test_time_major_padded_batch_matches_torch_packed(cls):
    torch.manual_seed(3)
    ref = cls(4, 6, num_layers=2, batch_first=False).double()
    ours = from_torch(ref)
    lengths = torch.tensor([5, 2, 4])
    x = torch.randn(5, 3, 4, dtype=torch.double)  # (T, B, I)
    out, state = ours(x, lengths=lengths)
    ref_out, ref_state = ref(pack_padded_sequence(x, lengths, enforce_sorted=False))
    ref_out = pad_packed_sequence(ref_out, total_length=5)[0]  # (T, B, H)
    assert out.shape == (5, 3, 6)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12)
    for a, b in zip(_states(stack_state(state)), _states(ref_state)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", [LSTM, GRU])
@pytest.mark.parametrize("lengths", [None, torch.tensor([6, 3, 5])])
def test_dropout_acts_between_layers_and_spares_the_last_output(cls, lengths):
    """As in nn.LSTM/nn.GRU, the last layer's output is what its state saw: at each
    sequence's last valid step it equals the final h, dropout or not."""
    torch.manual_seed(0)
    x = torch.randn(3, 6, 4, dtype=torch.double)
    layer = cls(4, 5, num_layers=3, dropout=0.5).double().train()
    plain = cls(4, 5, num_layers=3).double()
    plain.load_state_dict(layer.state_dict())
    out, state = layer(x, lengths=lengths)
    h_last = _states(state[-1])[0][0]  # the top layer's h: (B, H)
    steps = torch.full((3,), 6) if lengths is None else lengths
    torch.testing.assert_close(out[torch.arange(3), steps - 1], h_last, rtol=0, atol=1e-12)
    assert not torch.allclose(out, plain(x, lengths=lengths)[0])  # dropout did act, between the layers


@pytest.mark.parametrize("cls", [torch.nn.LSTM, torch.nn.GRU])
@pytest.mark.parametrize("lengths", [None, torch.tensor([6, 3, 5])])
def test_dropout_is_off_in_eval_as_torch(cls, lengths):
    """In eval mode a stack with dropout matches torch's (which drops nothing there),
    on the unpadded and the padded path."""
    torch.manual_seed(1)
    ref = cls(4, 5, num_layers=3, dropout=0.5, batch_first=True).double().eval()
    ours = from_torch(ref).eval()
    x = torch.randn(3, 6, 4, dtype=torch.double)
    if lengths is None:
        ref_out = ref(x)[0]
    else:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        ref_out = pad_packed_sequence(ref(packed)[0], batch_first=True, total_length=6)[0]
    torch.testing.assert_close(ours(x, lengths=lengths)[0], ref_out, rtol=0, atol=1e-12)


def test_from_torch_keeps_every_constructor_option():
    ref = torch.nn.LSTM(5, 7, num_layers=2, bias=False, batch_first=False, dropout=0.25, bidirectional=True,
                        proj_size=3)
    assert from_torch(ref).config() == {"input_size": 5, "hidden_size": 7, "num_layers": 2, "bias": False,
                                        "batch_first": False, "dropout": 0.25, "bidirectional": True,
                                        "proj_size": 3}
    gru = from_torch(torch.nn.GRU(3, 4, num_layers=3, dropout=0.5))
    assert (gru.dropout, gru.batch_first, gru.num_layers) == (0.5, False, 3)


@pytest.mark.parametrize("cls", [torch.nn.LSTM, torch.nn.GRU])
def test_bidirectional_padded_batch_with_initial_state_matches_torch_packed(cls):
    """A bidirectional padded batch that starts from a given state: the reverse
    direction starts at each sequence's last valid step from h0/c0, as nn.LSTM run
    packed does. Catches sending it through the freeze-column path, where the
    reverse LSTM runs over the padding first and its h (= o * tanh(c0)) drifts."""
    ref = _torch_module(cls, 2, True, 0)
    ours = from_torch(ref)
    lengths = torch.tensor([6, 2, 4, 1])
    x = torch.randn(4, 6, 5, dtype=torch.double)
    h0 = torch.randn(4, 4, 7, dtype=torch.double)  # (L*D, B, H)
    state = (h0, torch.randn_like(h0)) if cls is torch.nn.LSTM else h0
    out, final = ours(x, state, lengths=lengths)
    ref_out, ref_state = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False), state)
    ref_out = pad_packed_sequence(ref_out, batch_first=True, total_length=6)[0]
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12)
    for a, b in zip(_states(stack_state(final)), _states(ref_state)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_reset_parameters_is_pytorch_init(cls):
    """PyTorch's documented RNN init: every tensor U(-1/sqrt(H), 1/sqrt(H)), per layer's
    own H. Catches a bound of 1/H (or sqrt(H) of the wrong layer)."""
    torch.manual_seed(0)
    layer = cls(input_size=9, hidden_size=[16, 4], num_layers=2, bidirectional=True)
    for k, hidden in enumerate(layer.hidden_sizes):
        bound = 1.0 / hidden ** 0.5
        values = torch.cat([p.detach().flatten() for n, p in layer.named_parameters() if f"_l{k}" in n])
        assert float(values.abs().max()) <= bound, k
        assert float(values.abs().max()) > 0.95 * bound, k  # hundreds of uniform draws reach the last 5 %
        assert float(values.abs().mean()) == pytest.approx(bound / 2, rel=0.1), k  # E|U(-b, b)| = b/2

def test_invalid_lengths_state_and_projection_are_clear_errors():
    """Catches dropped checks: a zero length (it would read the output at step -1), a
    state list with the wrong number of layers (extra layers would be ignored), and
    proj_size on a GRU (PyTorch's GRU has no projection)."""
    for cls in (LSTM, GRU):
        layer = cls(3, 4, num_layers=2)
        with pytest.raises(ValueError, match="lengths"):
            layer(torch.randn(2, 5, 3), lengths=torch.tensor([0, 5]))
        state = layer(torch.randn(2, 5, 3))[1]
        with pytest.raises(ValueError, match="the module has 2"):
            layer(torch.randn(2, 5, 3), state + state[:1])
        with pytest.raises(ValueError, match="the module has 2"):
            layer(torch.randn(2, 5, 3), state[:1])
    with pytest.raises(ValueError, match="only supported by LSTM"):
        GRU(3, 4, proj_size=2)


@pytest.mark.parametrize("lengths", [None, torch.tensor([5, 3])])
def test_state_of_the_wrong_shape_is_a_clear_error(lengths):
    """A state whose batch, width or direction rows do not fit is refused with a
    ValueError naming the expected shape, as torch.nn.LSTM / nn.GRU refuse it. Catches
    handing it unchecked to the fused kernel, which for an LSTM corrupts the heap and
    aborts the process ("free(): invalid next size")."""
    x = torch.randn(2, 5, 3)
    lstm = LSTM(3, 4, num_layers=2, proj_size=2)
    h, c = torch.zeros(1, 2, 2), torch.zeros(1, 2, 4)
    for bad in ([(torch.zeros(1, 1, 2), c), (h, c)], [(h, torch.zeros(1, 1, 4)), (h, c)],
                [(h, c), (torch.zeros(1, 2, 4), c)], [(h, c), (h, torch.zeros(2, 2, 4))]):
        with pytest.raises(ValueError, match=r"state .*must be \(1, 2, [24]\)"):
            lstm(x, bad, lengths=lengths)
    with pytest.raises(ValueError, match=r"must be \(1, 2, 2\)"):  # stacked (L*D, B, P) with a wrong batch
        lstm(x, (torch.zeros(2, 3, 2), torch.zeros(2, 3, 4)), lengths=lengths)
    gru = GRU(3, 4, bidirectional=True)
    for bad in ([torch.zeros(1, 2, 4)], [torch.zeros(2, 1, 4)], [torch.zeros(2, 2, 5)], torch.zeros(2, 3, 4)):
        with pytest.raises(ValueError, match=r"must be \(2, 2, 4\)"):
            gru(x, bad, lengths=lengths)
    with pytest.raises(ValueError, match=r"stacked state must be \(2, B, H\)"):  # a third layer's rows
        lstm(x, (torch.zeros(3, 2, 2), torch.zeros(3, 2, 4)), lengths=lengths)
    # the right shapes still run, in both forms
    assert lstm(x, [(h, c), (h, c)], lengths=lengths)[0].shape == (2, 5, 2)
    assert gru(x, torch.zeros(2, 2, 4), lengths=lengths)[0].shape == (2, 5, 8)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_lengths_of_the_wrong_shape_are_a_clear_error(cls):
    """lengths must be (B,): one length per row, refused otherwise with a ValueError
    naming lengths rather than a RuntimeError from deep in the padding arithmetic
    (catches the shape check dropped)."""
    layer = cls(4, 6)
    x = torch.randn(2, 5, 4)
    for lengths in (torch.tensor([3]), torch.tensor([[3], [5]]), torch.tensor([3, 5, 2])):
        with pytest.raises(ValueError, match=r"lengths must be \(B,\)"):
            layer(x, lengths=lengths)


def test_config_round_trip_keeps_uneven_projection_sizes():
    """Structured pruning leaves one hidden and one projection size per layer: config()
    records them all and from_config() rebuilds the same parameter shapes.
    Catches the per-layer projection sizes collapsed into the first layer's."""
    layer = LSTM(4, [8, 6], num_layers=2, proj_size=[5, 3])
    rebuilt = LSTM.from_config(layer.config())
    assert rebuilt.proj_sizes == [5, 3]
    assert {k: v.shape for k, v in rebuilt.named_parameters()} == {k: v.shape for k, v in layer.named_parameters()}
