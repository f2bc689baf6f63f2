"""Drop-in behaviour of the families beyond the classic cells on the default engine: IndRNN's registered op
(``rnnlab::indrnn_sequence``), the sLSTM's (``rnnlab::slstm_sequence``) and the parallel scans (plain torch ops).
The checks are test_dropin's, run on these families: torch.compile forward and backward equal eager; torch.export
with a dynamic batch and sequence length; double backward (gradgradcheck, a gradient penalty equal to the
reference engine's); vmap per-sample gradients; empty batches."""

import pytest
import torch

from tests.dropin import test_dropin as dropin

# IndRNN and the sLSTM run their compiled kernels as registered ops; minGRU, the RG-LRU and the mLSTM parallel forms
FAMILIES = ["indrnn", "slstm", "mingru", "rglru", "mlstm"]


def _slow(*ids):
    """FAMILIES with the given ones marked slow."""
    return [pytest.param(f, marks=pytest.mark.slow) if f in ids else f for f in FAMILIES]


@pytest.mark.parametrize("config_id", _slow("mlstm"))
def test_compile_forward_and_backward_equal_eager(config_id):
    torch._dynamo.reset()  # every layer class compiles the same forward: stay under dynamo's recompile limit
    dropin.test_compile_forward_and_backward_equal_eager(config_id)


@pytest.mark.parametrize("config_id", ["indrnn", "slstm", "mingru", "mlstm"])
def test_export_with_dynamic_batch_and_length(config_id):
    dropin.test_export_with_dynamic_batch_and_length(config_id)


@pytest.mark.parametrize("config_id", ["rglru", pytest.param("lru", marks=pytest.mark.slow)])
def test_chunked_scans_export_at_a_fixed_length(config_id):
    """The LRU's and the RG-LRU's chunked scans loop over chunks in Python: the exported program has a dynamic
    batch but the example's sequence length, and a dynamic length is refused at export (never a wrong graph)."""
    layer, i = dropin._layer(config_id)
    layer.eval()
    B = torch.export.Dim("B", min=2, max=512)
    program = torch.export.export(layer, (torch.randn(20, 3, i),), dynamic_shapes=({1: B},))
    x = torch.randn(20, 7, i)
    torch.testing.assert_close(program.module()(x), layer(x))
    T = torch.export.Dim("T", min=2, max=512)
    with pytest.raises(torch._dynamo.exc.UserError, match=r"Constraints violated \(T\)"):
        torch.export.export(layer, (torch.randn(20, 3, i),), dynamic_shapes=({0: T, 1: B},))


@pytest.mark.parametrize("config_id", ["indrnn", "slstm"])
def test_exported_program_holds_the_registered_op(config_id):
    layer, i = dropin._layer(config_id)
    T, B = torch.export.Dim("T", min=2, max=512), torch.export.Dim("B", min=2, max=512)
    program = torch.export.export(layer.eval(), (torch.randn(5, 3, i),), dynamic_shapes=({0: T, 1: B},))
    assert f"rnnlab.{config_id}_sequence" in str(program.graph)


# the sLSTM's double backward recomputes through its reference loop (the same code path as IndRNN's), the mLSTM's
# differentiates its parallel form twice: slow
@pytest.mark.parametrize("config_id", _slow("slstm", "mlstm"))
def test_gradgradcheck(config_id):
    dropin.test_gradgradcheck(config_id)


@pytest.mark.parametrize("config_id", FAMILIES)
def test_gradient_penalty_equals_the_reference_engine(config_id):
    dropin.test_gradient_penalty_equals_the_reference_engine(config_id)


@pytest.mark.parametrize("config_id", FAMILIES)
def test_vmap_per_sample_gradients(config_id):
    dropin.test_vmap_per_sample_gradients(config_id)


@pytest.mark.parametrize("config_id", FAMILIES)
def test_empty_batch_gives_empty_outputs_and_zero_gradients(config_id):
    dropin.test_empty_batch_gives_empty_outputs_and_zero_gradients(config_id)
