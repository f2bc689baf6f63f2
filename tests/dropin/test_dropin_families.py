"""Drop-in behaviour of the families beyond the classic cells on the default engine: IndRNN's registered op
(``rnnlab::indrnn_sequence``) and the parallel scans (plain torch ops). The checks are test_dropin's, run on
these families: torch.compile forward and backward equal eager; torch.export with a dynamic batch and sequence
length; double backward (gradgradcheck, a gradient penalty equal to the reference engine's); vmap per-sample
gradients; empty batches."""

import pytest
import torch

from tests.dropin import test_dropin as dropin

# IndRNN runs its compiled kernel as a registered op; minGRU a log-space scan
FAMILIES = ["indrnn", "mingru"]


@pytest.mark.parametrize("config_id", FAMILIES)
def test_compile_forward_and_backward_equal_eager(config_id):
    dropin.test_compile_forward_and_backward_equal_eager(config_id)


@pytest.mark.parametrize("config_id", FAMILIES)
def test_export_with_dynamic_batch_and_length(config_id):
    dropin.test_export_with_dynamic_batch_and_length(config_id)


def test_exported_indrnn_holds_the_registered_op():
    layer, i = dropin._layer("indrnn")
    T, B = torch.export.Dim("T", min=2, max=512), torch.export.Dim("B", min=2, max=512)
    program = torch.export.export(layer.eval(), (torch.randn(5, 3, i),), dynamic_shapes=({0: T, 1: B},))
    assert "rnnlab.indrnn_sequence" in str(program.graph)


@pytest.mark.parametrize("config_id", FAMILIES)
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
