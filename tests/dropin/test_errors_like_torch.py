"""The same mistakes raise what torch.nn raises: each case runs on torch's layer and on ours, side by side, and
our exception must be an instance of torch's exception type (code that catches torch's errors catches ours).
Ours are also :class:`rnnlab.InputError` where they are about the user's input."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab

I, H = 3, 4

# (id, constructor kwargs beyond (I, H)) of constructor mistakes
CONSTRUCTOR = [
    ("hidden_size=0", dict(hidden_size=0)), ("hidden_size=-1", dict(hidden_size=-1)),
    ("hidden_size=2.5", dict(hidden_size=2.5)), ("hidden_size='4'", dict(hidden_size="4")),
    ("num_layers=0", dict(num_layers=0)), ("num_layers=1.5", dict(num_layers=1.5)),
    ("num_layers=-1", dict(num_layers=-1)),
    ("dropout=1.5", dict(dropout=1.5)), ("dropout=-0.1", dict(dropout=-0.1)), ("dropout='x'", dict(dropout="x")),
    ("dropout=True", dict(dropout=True)),
    ("proj_size=2", dict(proj_size=2)), ("proj_size=4", dict(proj_size=4)), ("proj_size=-1", dict(proj_size=-1)),
    ("proj_size=5", dict(proj_size=5)),
    ("nonlinearity='sigmoid'", dict(nonlinearity="sigmoid")),
]


def _build(family, kwargs, lib):
    kwargs = dict(kwargs)
    hidden = kwargs.pop("hidden_size", H)
    cls = getattr(torch.nn if lib == "torch" else rnnlab, family)
    if "nonlinearity" in kwargs and family != "RNN":
        pytest.skip("nonlinearity is an RNN argument")
    return cls(I, hidden, **kwargs)


def _raised(fn):
    try:
        fn()
    except Exception as exc:  # the case is about which exception, so any
        return exc
    return None


def _assert_same_kind(theirs, ours):
    if theirs is None:
        return  # torch accepts it: rnnlab may accept it or be stricter
    assert ours is not None, f"torch raises {type(theirs).__name__}({theirs}), rnnlab raises nothing"
    assert isinstance(ours, type(theirs)), (f"torch raises {type(theirs).__name__}({theirs}); rnnlab raises "
                                           f"{type(ours).__name__}({ours})")


@pytest.mark.parametrize("family", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("case", [c[1] for c in CONSTRUCTOR], ids=[c[0] for c in CONSTRUCTOR])
def test_constructor_errors_like_torch(family, case):
    theirs = _raised(lambda: _build(family, case, "torch"))
    ours = _raised(lambda: _build(family, case, "rnnlab"))
    _assert_same_kind(theirs, ours)


def _forward_cases(family):
    """(id, input, hx) of forward mistakes for a layer (I=3, H=4, 1 layer) of ``family``."""
    two = family == "LSTM"
    state = lambda *shape: (torch.zeros(*shape), torch.zeros(*shape)) if two else torch.zeros(*shape)  # noqa: E731
    x = torch.randn(5, 2, I)
    packed = pack_padded_sequence(x, torch.tensor([5, 3]))
    return [
        ("features", torch.randn(5, 2, I + 1), None),
        ("4-d input", torch.randn(5, 2, 1, I), None),
        ("1-d input", torch.randn(I), None),
        ("0-d input", torch.tensor(1.0), None),
        ("no steps", torch.randn(0, 2, I), None),
        ("hx batch", x, state(1, 3, H)),
        ("hx size", x, state(1, 2, H + 1)),
        ("hx layers", x, state(2, 2, H)),
        ("hx 2-d for batched", x, state(2, H)),
        ("hx 3-d for unbatched", torch.randn(5, I), state(1, 1, H)),
        ("packed hx batch", packed, state(1, 3, H)),
        ("input dtype", torch.randn(5, 2, I, dtype=torch.float64), None),
        ("hx dtype", x, state(1, 2, H) if not two else (torch.zeros(1, 2, H, dtype=torch.float64),
                                                        torch.zeros(1, 2, H))),
        ("input int", torch.ones(5, 2, I, dtype=torch.int64), None),
        ("hx tuple for a single state" if not two else "hx single tensor for two states", x,
         (torch.zeros(1, 2, H), torch.zeros(1, 2, H)) if not two else torch.zeros(1, 2, H)),
        ("hx of three", x, (torch.zeros(1, 2, H),) * 3),
        ("hx not a tensor", x, [[0.0] * H] * 2),
        ("input a list", [[0.0] * I] * 5, None),
    ]


FORWARD_IDS = [c[0].replace("hx tuple for a single state", "hx arity").replace("hx single tensor for two states",
                                                                             "hx arity") for c in
               _forward_cases("GRU")]


@pytest.mark.parametrize("family", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("index", range(len(FORWARD_IDS)), ids=FORWARD_IDS)
def test_forward_errors_like_torch(family, index):
    torch.manual_seed(0)
    theirs_layer, ours_layer = getattr(torch.nn, family)(I, H), getattr(rnnlab, family)(I, H)
    _, x, hx = _forward_cases(family)[index]
    theirs = _raised(lambda: theirs_layer(x, hx))
    ours = _raised(lambda: ours_layer(x, hx))
    _assert_same_kind(theirs, ours)
    if ours is not None and not isinstance(ours, (RuntimeError, TypeError)) or isinstance(ours, rnnlab.InputError):
        assert isinstance(ours, rnnlab.InputError), f"{type(ours).__name__}: {ours}"


def test_input_errors_are_both_torchs_type_and_input_error():
    with pytest.raises(RuntimeError, match="expected input with input_size 3") as info:
        rnnlab.LSTM(I, H)(torch.randn(5, 2, I + 1))
    assert isinstance(info.value, rnnlab.InputError) and isinstance(info.value, ValueError)
    with pytest.raises(TypeError, match="hidden_size must be an int") as info:
        rnnlab.GRU(I, 2.5)
    assert isinstance(info.value, rnnlab.InputError)
