"""Drop-in behaviour on the default (fused) engine, for RNN, LSTM, GRU and their variants: torch.compile forward and
backward equal eager; torch.export with a dynamic batch and sequence length; ONNX export checked in onnxruntime at
two sequence lengths and several batch sizes (or an explicit error); double backward (gradgradcheck in float64, and
a gradient penalty equal to the reference engine's); vmap per-sample gradients and jacrev; empty batches; torch's
kernels for vanilla configurations on CUDA (the dispatch tested on the CPU); autocast; dynamic quantization.

The default suite runs one case of each check per family (and a variant or two); the sweeps over every variant are
marked slow."""

import contextlib
import io
import warnings

import pytest
import torch

import rnnlab
from rnnlab.engine import native
from tests.layers.catalog import CONFIGS

I, H = 3, 4
DT = torch.float64
_BY_ID = {c[0]: c for c in CONFIGS}
# the default suite: each family's torch configuration and a variant with layer norm
QUICK = ["rnn:tanh", "lstm:vanilla", "gru:vanilla", "lstm:peephole:ln", "gru:mgu"]
SLOW = [c[0] for c in CONFIGS if c[0] not in QUICK]
ALL = [*QUICK, *(pytest.param(c, marks=pytest.mark.slow) for c in SLOW)]


def _layer(config_id, dtype=torch.float32, **kw):
    _, factory, input_size = _BY_ID[config_id]
    torch.manual_seed(0)
    return factory(input_size, dtype=dtype, **kw), input_size


def _params(layer):
    return {k: v.detach() for k, v in layer.named_parameters()}


# ---- torch.compile ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config_id", ALL)
def test_compile_forward_and_backward_equal_eager(config_id):
    layer, i = _layer(config_id)
    x = torch.randn(5, 2, i, requires_grad=True)
    results = []
    for run in (layer, torch.compile(layer, backend="aot_eager", fullgraph=True)):
        out, state = run(x)
        loss = out.pow(2).sum() + sum(s.sum() for s in (state if isinstance(state, tuple) else (state,)))
        results.append([out, *torch.autograd.grad(loss, [x, *layer.parameters()])])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_compile_with_inductor_equals_eager():
    layer, i = _layer("lstm:vanilla")
    x = torch.randn(5, 2, i, requires_grad=True)
    compiled = torch.compile(layer)
    torch.testing.assert_close(compiled(x)[0], layer(x)[0])


# ---- torch.export ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config_id", ["lstm:vanilla", "gru:mut3:ln", "rnn:relu"])
def test_export_with_dynamic_batch_and_length(config_id):
    layer, i = _layer(config_id)
    layer.eval()
    T, B = torch.export.Dim("T", min=2, max=512), torch.export.Dim("B", min=2, max=512)
    program = torch.export.export(layer, (torch.randn(5, 3, i),), dynamic_shapes=({0: T, 1: B},))
    for steps, batch in ((9, 4), (2, 7)):
        x = torch.randn(steps, batch, i)
        torch.testing.assert_close(program.module()(x), layer(x))


# ---- ONNX ----------------------------------------------------------------------------------------------------------
def _onnx_session(layer, x, batch_first):
    ort = pytest.importorskip("onnxruntime")
    axes = {0: "B", 1: "T"} if batch_first else {0: "T", 1: "B"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation and tracer notes
        torch.onnx.export(layer, (x,), buffer, dynamo=False, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": axes, "y": axes})
    return ort.InferenceSession(buffer.getvalue())


@pytest.mark.parametrize("family,options", [("RNN", {}), ("LSTM", {}), ("GRU", {"backend": "reference"}),
                                            ("LSTM", {"num_layers": 2, "bidirectional": True, "batch_first": True})],
                         ids=["rnn", "lstm", "gru-reference-backend", "lstm-2-layers-bidirectional-batch-first"])
def test_onnx_export_runs_in_onnxruntime_at_other_lengths_and_batches(family, options):
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    layer = getattr(rnnlab, family)(I, H, **options).eval()
    batch_first = options.get("batch_first", False)
    session = _onnx_session(layer, torch.randn(2, 5, I) if batch_first else torch.randn(5, 2, I), batch_first)
    for steps in (9, 2):
        for batch in (1, 3, 8):
            x = torch.randn(batch, steps, I) if batch_first else torch.randn(steps, batch, I)
            got = session.run(["y"], {"x": x.numpy()})[0]
            torch.testing.assert_close(torch.from_numpy(got), layer(x)[0].detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("config_id", ["lstm:peephole", "gru:mgu", "rnn:tanh:ln", "lstm:proj"])
@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_onnx_export_of_a_variant_raises_naming_it(config_id, backend):
    layer, i = _layer(config_id, backend=backend)
    with warnings.catch_warnings(), pytest.raises(native.OnnxExportError, match="cannot export"):
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation note
        torch.onnx.export(layer, (torch.randn(5, 2, i),), io.BytesIO(), dynamo=False)


def _dynamo_onnx_session(layer, x, dynamic_shapes):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's own notes
        program = torch.onnx.export(layer, (x,), dynamo=True, dynamic_shapes=dynamic_shapes)
    session = ort.InferenceSession(program.model_proto.SerializeToString())
    return lambda x: session.run(None, {session.get_inputs()[0].name: x.numpy()})


def _check_dynamo_onnx(layer, make_input, dims, steps_and_batches=((9, 4), (2, 1))):
    """Export ``layer`` at 5 steps x 3 with ``dims`` (the axes of time and batch) dynamic, then compare every
    output of onnxruntime with eager at other lengths and batch sizes."""
    T, B = torch.export.Dim("T", min=2, max=512), torch.export.Dim("B", min=1, max=512)
    run = _dynamo_onnx_session(layer.eval(), make_input(5, 3), ({dims[0]: T, dims[1]: B},))
    for steps, batch in steps_and_batches:
        x = make_input(steps, batch)
        expected = torch.utils._pytree.tree_leaves(layer(x))  # output, then each state tensor (nested for stacks)
        got = run(x)
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            torch.testing.assert_close(torch.from_numpy(g), e.detach(), rtol=1e-5, atol=1e-5)


DYNAMO_QUICK = [*QUICK, "slstm"]


@pytest.mark.parametrize("config_id", [*DYNAMO_QUICK, *(pytest.param(c, marks=pytest.mark.slow) for c in _BY_ID
                                                        if c not in DYNAMO_QUICK)])
def test_dynamo_onnx_export_of_every_configuration_has_a_dynamic_length(config_id):
    layer, i = _layer(config_id)
    _check_dynamo_onnx(layer, lambda t, b: torch.randn(t, b, i), (0, 1))


@pytest.mark.parametrize("make_layer,shape", [
    (lambda: rnnlab.GRU(I, H, num_layers=2, bidirectional=True, batch_first=True, variant="mgu", zoneout=0.3),
     lambda t, b: (b, t, I)),
    (lambda: rnnlab.ConvLSTM(2, 3, kernel_size=3, num_layers=2, bidirectional=True), lambda t, b: (t, b, 2, 4, 5)),
    pytest.param(lambda: rnnlab.build_layer("lstm+gru", I, H), lambda t, b: (t, b, I), marks=pytest.mark.slow),
], ids=["gru-mgu-bidirectional-batch-first-zoneout", "convlstm", "lstm+gru-stack"])
def test_dynamo_onnx_export_of_bidirectional_stacked_and_conv_layers(make_layer, shape):
    torch.manual_seed(0)
    layer = make_layer()
    batch_first = getattr(layer, "batch_first", False)
    _check_dynamo_onnx(layer, lambda t, b: torch.randn(*shape(t, b)), (1, 0) if batch_first else (0, 1))


# ---- higher-order gradients ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("config_id", ALL)
def test_gradgradcheck(config_id):
    layer, i = _layer(config_id, dtype=DT)
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(2, 2, i, dtype=DT, requires_grad=True)

    def f(x, *params):
        return torch.func.functional_call(layer, dict(zip(names, params, strict=True)), (x,))[0]

    assert torch.autograd.gradgradcheck(f, (x, *layer.parameters()), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("config_id", ALL)
def test_gradient_penalty_equals_the_reference_engine(config_id):
    """WGAN-GP style: the weights' gradient of ||d out / d x||^2 is the reference engine's, and not zero."""
    layer, i = _layer(config_id, dtype=DT)
    x = torch.randn(4, 3, i, dtype=DT, requires_grad=True)
    grads = []
    for backend in ("fused", "reference"):
        layer.backend = backend
        out = layer(x)[0]
        (dx,) = torch.autograd.grad(out.pow(2).sum(), x, create_graph=True)
        grads.append(torch.autograd.grad(dx.pow(2).sum(), list(layer.parameters())))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert any(g.abs().sum() > 0 for g in grads[0])


# ---- torch.func --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config_id", ALL)
def test_vmap_per_sample_gradients(config_id):
    layer, i = _layer(config_id, dtype=DT)
    params = _params(layer)
    x = torch.randn(4, 3, i, dtype=DT)  # (T, N, I): N samples

    def loss(p, sample):  # sample (T, I), unbatched
        return torch.func.functional_call(layer, p, (sample,))[0].pow(2).sum()

    per_sample = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 1))(params, x)
    layer.backend = "reference"
    for n in range(x.shape[1]):
        expected = torch.func.grad(loss)(params, x[:, n])
        for name in params:
            torch.testing.assert_close(per_sample[name][n], expected[name], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("config_id", ["lstm:vanilla", "gru:reset_before"])
def test_jacrev_equals_the_reference(config_id):
    layer, i = _layer(config_id, dtype=DT)
    x = torch.randn(3, 2, i, dtype=DT)
    jac = torch.func.jacrev(lambda x: layer(x)[0])(x)
    layer.backend = "reference"
    torch.testing.assert_close(jac, torch.func.jacrev(lambda x: layer(x)[0])(x), rtol=1e-9, atol=1e-12)


# ---- edge shapes ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config_id", ALL)
def test_empty_batch_gives_empty_outputs_and_zero_gradients(config_id):
    layer, i = _layer(config_id)
    x = torch.randn(5, 0, i, requires_grad=True)
    out, state = layer(x)
    states = state if isinstance(state, tuple) else (state,)
    assert out.shape[:2] == (5, 0) and all(s.shape[1] == 0 for s in states)
    (out.sum() + sum(s.sum() for s in states)).backward()
    assert x.grad.shape == x.shape
    assert all(p.grad is not None and not p.grad.any() for p in layer.parameters())


def test_empty_batch_matches_torch_layers():
    for family in ("RNN", "LSTM", "GRU"):
        ours, theirs = getattr(rnnlab, family)(I, H, batch_first=True), getattr(torch.nn, family)(I, H,
                                                                                              batch_first=True)
        x = torch.randn(0, 4, I)
        a, b = ours(x), theirs(x)
        assert a[0].shape == b[0].shape
        sa, sb = (a[1], b[1]) if family == "LSTM" else ((a[1],), (b[1],))
        assert [s.shape for s in sa] == [s.shape for s in sb]


# ---- CUDA: torch's kernels for torch's configurations (the dispatch, tested on the CPU) ------------------------------
@pytest.fixture
def cpu_as_native(monkeypatch):
    monkeypatch.setattr(native, "NATIVE_DEVICES", ("cpu",))
    monkeypatch.setattr(native, "_warned", set())


@pytest.mark.parametrize("family,options", [("RNN", {"nonlinearity": "relu"}), ("LSTM", {"proj_size": 2}),
                                            ("GRU", {"num_layers": 2, "bidirectional": True})],
                         ids=["rnn-relu", "lstm-proj", "gru-2-layers-bidirectional"])
def test_vanilla_configurations_run_torchs_kernels(cpu_as_native, family, options):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, family)(I, H, **options)
    ours = getattr(rnnlab, family)(I, H, **options)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(6, 3, I)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor([6, 2, 4]), enforce_sorted=False)
    for inp in (x, packed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note that oneDNN has no projection
            a, b = theirs(inp), ours(inp)
        a_out, b_out = (a[0].data, b[0].data) if inp is packed else (a[0], b[0])
        torch.testing.assert_close(b_out, a_out, rtol=0, atol=1e-6)


def test_variants_run_the_reference_with_one_warning(cpu_as_native):
    layer, i = _layer("gru:mgu")
    x = torch.randn(4, 2, i)
    with pytest.warns(RuntimeWarning, match="gru:mgu has no cpu kernel; it runs the reference engine"):
        out = layer(x)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(x)  # once only
    layer.backend = "reference"
    torch.testing.assert_close(out, layer(x)[0], rtol=0, atol=0)


# ---- autocast ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_runs_in_float32_and_says_so(dtype, monkeypatch):
    from rnnlab.layers import recurrent

    monkeypatch.setattr(recurrent, "_autocast_warned", False)
    layer, i = _layer("lstm:vanilla")
    x = torch.randn(5, 2, i)
    expected = layer(x)[0]
    with torch.autocast("cpu", dtype=dtype), pytest.warns(RuntimeWarning, match="autocast.*float32"):
        out = layer(x)[0]
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


# ---- dynamic quantization ------------------------------------------------------------------------------------------
def test_quantize_dynamic_matches_torchs_quantized_layers():
    torch.manual_seed(0)
    for family in ("LSTM", "GRU"):
        ours, theirs = getattr(rnnlab, family)(8, 16, num_layers=2), getattr(torch.nn, family)(8, 16, num_layers=2)
        theirs.load_state_dict(ours.state_dict())
        model = torch.nn.Sequential(ours)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notes
            q_ours = rnnlab.quantize_dynamic(model)
            q_theirs = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(theirs), {getattr(torch.nn, family)})
            x = torch.randn(7, 3, 8)
            got, want = q_ours(x)[0], q_theirs(x)[0]
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        assert not any(isinstance(m, rnnlab.layers.recurrent.Recurrent) for m in q_ours.modules())
        assert (got - ours(x)[0]).abs().max() < 0.05  # int8 weights: close to the float layer


def test_quantize_dynamic_refuses_what_it_cannot_convert():
    model = torch.nn.Sequential(rnnlab.GRU(4, 4, variant="mgu"))
    with pytest.raises(rnnlab.InputError, match="gru:mgu"):
        rnnlab.quantize_dynamic(model)
    with warnings.catch_warnings(), pytest.raises(rnnlab.InputError, match="rnnlab.quantize_dynamic"):
        warnings.simplefilter("ignore")
        torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(rnnlab.LSTM(4, 4)), {rnnlab.LSTM})


def test_layers_answer_isinstance_like_the_readme_says():
    layer = rnnlab.LSTM(I, H)
    assert isinstance(layer, torch.nn.Module) and not isinstance(layer, torch.nn.RNNBase)
    assert layer.all_weights[0][0] is layer.weight_ih_l0
