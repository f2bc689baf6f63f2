"""Convolutional recurrent layers over image sequences: ``ConvLSTM`` (Shi et al. 2015), ``ConvGRU`` (Ballas et al.
2016) and ``ConvRNN``: the gates of the LSTM, GRU and Elman cells with every matrix product replaced by a 2-D
convolution, so that the state keeps the frame's layout ``(C, H, W)``.

Shape legend: ``T`` steps, ``B`` batch, ``C`` input channels (``input_size``), ``K`` hidden channels
(``hidden_size``), ``H x W`` the frame (kept: the convolutions pad by ``kernel_size // 2``), ``G`` gates (LSTM 4,
GRU 3, RNN 1), ``L`` layers, ``D`` directions.

The input convolution of every step is hoisted out of the time loop (one ``conv2d`` over all ``T * B`` frames);
the loop runs the recurrent convolution and the gate math of each step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from rnnlab.cells.base import check_positive_int, check_rate
from rnnlab.engine import export
from rnnlab.errors import InputError

__all__ = ["ConvGRU", "ConvLSTM", "ConvRNN", "ConvRecurrent"]


class ConvRecurrent(nn.Module):
    """A stack of convolutional recurrent layers of one family, with the arguments and outputs of torch's
    ``nn.LSTM``/``nn.GRU``/``nn.RNN`` for ``(C, H, W)`` frames instead of vectors.

    Args:
        input_size: channels ``C`` of an input frame.
        hidden_size: channels ``K`` of the state.
        num_layers, bias, batch_first, dropout, bidirectional, device, dtype: as torch's layers (``dropout``
            between stacked layers, training only).
        kernel_size: (keyword) the odd side of the square kernels of the input and recurrent convolutions.
        forget_bias: (keyword, LSTM) initial bias of the forget gate, added to ``bias_ih``'s forget rows.

    Inputs: ``input`` ``(T, B, C, H, W)`` (``(B, T, C, H, W)`` with ``batch_first``) or ``(T, C, H, W)``
    unbatched; ``hx`` the initial state (zeros if omitted): LSTM ``(h_0, c_0)``, GRU and RNN ``h_0``, each
    ``(L*D, B, K, H, W)`` (``(L*D, K, H, W)`` unbatched). Outputs: ``output`` ``(T, B, D*K, H, W)`` (the input's
    layout) and the final state in the layout of ``hx``. ``PackedSequence`` inputs are not supported (frames of a
    batch share one length).

    Parameters of layer ``k`` (suffix ``_reverse`` for the backward direction), gate rows in torch's order:
    ``weight_ih_l{k}`` ``(G*K, C_k, k, k)``, ``weight_hh_l{k}`` ``(G*K, K, k, k)``, ``bias_ih_l{k}`` and
    ``bias_hh_l{k}`` ``(G*K,)``; ``C_0 = C`` and ``C_k = D*K`` above. Initialised uniform in
    ``(-1/sqrt(K k^2), 1/sqrt(K k^2))`` as torch initialises its recurrent layers (fan-in ``K k^2``).

    Stepping: calling the layer on one step at a time with the returned state gives exactly the full-sequence
    outputs (in evaluation mode, or in training without dropout).
    """

    family: str = ""
    gates: int = 0

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, kernel_size: int = 5, forget_bias: float | None = None) -> None:
        super().__init__()
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        check_positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise InputError(f"kernel_size must be odd (the frame keeps its size), got {kernel_size}")
        for name, flag in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional)):
            if not isinstance(flag, bool):
                raise InputError(f"{name} must be a bool, got {type(flag).__name__}")
        if forget_bias is not None and self.family != "lstm":
            raise InputError(f"forget_bias applies to the ConvLSTM's forget gate; {type(self).__name__} has none")
        self.dropout = check_rate("dropout", dropout, allow_one=True)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.kernel_size, self.forget_bias = kernel_size, forget_bias
        self.num_directions = 2 if bidirectional else 1
        gk, k = self.gates * hidden_size, kernel_size
        for layer in range(num_layers):
            channels = input_size if layer == 0 else self.num_directions * hidden_size
            for sfx in ("", "_reverse")[: self.num_directions]:
                shapes = {"weight_ih": (gk, channels, k, k), "weight_hh": (gk, hidden_size, k, k)}
                if bias:
                    shapes.update(bias_ih=(gk,), bias_hh=(gk,))
                for name, shape in shapes.items():
                    self.register_parameter(f"{name}_l{layer}{sfx}",
                                            nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in ``(-1/sqrt(K k^2), 1/sqrt(K k^2))``, then ``forget_bias`` on the forget rows if given."""
        bound = (self.hidden_size * self.kernel_size**2) ** -0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        if self.forget_bias is not None and self.bias:
            K = self.hidden_size
            with torch.no_grad():
                for name, p in self.named_parameters():
                    if name.startswith("bias_ih"):
                        p[K : 2 * K] = self.forget_bias
                    elif name.startswith("bias_hh"):
                        p[K : 2 * K] = 0.0

    def _params(self, layer: int, direction: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        w_ih, w_hh = getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx)
        if not self.bias:
            return w_ih, w_hh, None, None
        return w_ih, w_hh, getattr(self, "bias_ih" + sfx), getattr(self, "bias_hh" + sfx)

    # ---- one step ------------------------------------------------------------------------------------------
    def step(self, gx: Tensor, gh: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """The family's gate math: ``gx``, ``gh`` ``(B, G*K, H, W)`` input and recurrent convolutions (biases
        included), ``state`` a tuple of ``(B, K, H, W)``; returns the new state, ``h`` first."""
        raise NotImplementedError

    def state_count(self) -> int:
        """Tensors in the state: 2 for the LSTM (``h, c``), else 1."""
        return 2 if self.family == "lstm" else 1

    # ---- forward -------------------------------------------------------------------------------------------
    def forward(self, input: Tensor, hx=None):
        if isinstance(input, PackedSequence):
            raise InputError(f"{type(self).__name__} takes a tensor of frames; a PackedSequence is not supported")
        if not isinstance(input, Tensor):
            raise InputError(f"input must be a Tensor, got {type(input).__name__}")
        if input.dim() not in (4, 5):
            raise InputError(f"expected input of 4 (unbatched: T, C, H, W) or 5 (batched: T, B, C, H, W) "
                             f"dimensions, got {input.dim()}")
        batched = input.dim() == 5
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        T, B, C, H, W = x.shape  # time-major from here
        if C != self.input_size:
            raise InputError(f"expected input with input_size {self.input_size} channels, got {C}")
        if T == 0:
            raise InputError("expected a sequence of at least 1 step, got 0")
        states = self._initial_states(hx, B, H, W, batched, x)
        finals = []
        layer_x = x
        for layer in range(self.num_layers):
            outputs = []
            for d in range(self.num_directions):
                seq = layer_x.flip(0) if d else layer_x
                out, final = self._run(layer, d, seq, states[layer * self.num_directions + d])
                outputs.append(out.flip(0) if d else out)
                finals.append(final)
            layer_x = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)  # (T, B, D*K, H, W)
            if layer + 1 < self.num_layers and self.dropout > 0:
                layer_x = F.dropout(layer_x, self.dropout, self.training)
        state = tuple(torch.stack(s) for s in zip(*finals, strict=True))  # each (L*D, B, K, H, W)
        output = layer_x
        if not batched:
            output, state = output.squeeze(1), tuple(s.squeeze(1) for s in state)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, (state if len(state) > 1 else state[0])

    def _run(self, layer: int, d: int, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One layer and direction over ``x (T, B, C_k, H, W)`` -> ``(outputs (T, B, K, H, W), final state)``."""
        w_ih, w_hh, b_ih, b_hh = self._params(layer, d)
        T, B, C, H, W = x.shape
        pad = self.kernel_size // 2
        gx = F.conv2d(x.reshape(T * B, C, H, W), w_ih, b_ih, padding=pad).view(T, B, -1, H, W)  # (T, B, G*K, H, W)
        if export.exporting_to_onnx():  # the loop as one scan: ONNX's Scan keeps the sequence length dynamic
            w_hh, b_hh = w_hh.detach(), None if b_hh is None else b_hh.detach()
            final, (sequence,) = export.scan_steps(
                lambda old, x_t: self.step(x_t[0], F.conv2d(old[0], w_hh, b_hh, padding=pad), old), state, [gx])
            return sequence, final
        outputs = []
        for t in range(T):
            gh = F.conv2d(state[0], w_hh, b_hh, padding=pad)  # (B, G*K, H, W)
            state = self.step(gx[t], gh, state)
            outputs.append(state[0])
        return torch.stack(outputs), state

    def _initial_states(self, hx, B: int, H: int, W: int, batched: bool, x: Tensor) -> list[tuple[Tensor, ...]]:
        """-> per layer and direction (index ``k*D + d``), a tuple of ``(B, K, H, W)`` state tensors."""
        LD, n = self.num_layers * self.num_directions, self.state_count()
        if hx is None:
            zeros = x.new_zeros(B, self.hidden_size, H, W)
            return [(zeros,) * n for _ in range(LD)]
        tensors = (hx,) if isinstance(hx, Tensor) else tuple(hx) if isinstance(hx, (tuple, list)) else None
        if tensors is None or len(tensors) != n or not all(isinstance(t, Tensor) for t in tensors):
            kind = "a Tensor" if n == 1 else f"a tuple of {n} Tensors"
            raise InputError(f"expected hx to be {kind}, got {type(hx).__name__}")
        expected = (LD, B, self.hidden_size, H, W) if batched else (LD, self.hidden_size, H, W)
        for name, t in zip(("h0", "c0"), tensors, strict=False):
            if tuple(t.shape) != expected:
                raise InputError(f"expected {name} of shape {expected}, got {tuple(t.shape)}")
        per_state = [t if batched else t.unsqueeze(1) for t in tensors]  # (L*D, B, K, H, W)
        return [tuple(s[j] for s in per_state) for j in range(LD)]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, kernel_size={self.kernel_size}"
        for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("forget_bias", None)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s


class ConvLSTM(ConvRecurrent):
    """Convolutional LSTM (Shi et al. 2015, "Convolutional LSTM Network: A Machine Learning Approach for
    Precipitation Nowcasting"): input, hidden and cell states are ``(K, H, W)`` maps, and every gate is a 2-D
    convolution of the input frame and of the previous hidden map (``*``: convolution, ``⊙``: elementwise):

    .. math::

        \\begin{array}{ll}
        i_t = \\sigma(W_{ii} * x_t + b_{ii} + W_{hi} * h_{t-1} + b_{hi}) \\\\
        f_t = \\sigma(W_{if} * x_t + b_{if} + W_{hf} * h_{t-1} + b_{hf}) \\\\
        g_t = \\tanh(W_{ig} * x_t + b_{ig} + W_{hg} * h_{t-1} + b_{hg}) \\\\
        o_t = \\sigma(W_{io} * x_t + b_{io} + W_{ho} * h_{t-1} + b_{ho}) \\\\
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t \\\\
        h_t = o_t ⊙ \\tanh(c_t)
        \\end{array}

    Shi et al. also add peephole terms ``W_c ⊙ c`` to the gates; they are left out here, as in torch's LSTM and
    most ConvLSTM code. With ``kernel_size=1`` and ``1 x 1`` frames this is exactly torch's ``nn.LSTM`` (the same
    weights reshaped), which the tests check. Arguments, shapes and parameters: see :class:`ConvRecurrent`
    (``G = 4``, rows ``i, f, g, o``). Equivalent to the following loop (one layer, one direction)::

        h, c = h0, c0                                        # (B, K, H, W)
        for t in range(T):
            gates = conv2d(x[t], weight_ih, bias_ih, padding=k // 2) + conv2d(h, weight_hh, bias_hh, padding=k // 2)
            i, f, g, o = gates.chunk(4, dim=1)               # each (B, K, H, W)
            c = sigmoid(f) * c + sigmoid(i) * tanh(g)
            h = sigmoid(o) * tanh(c)
            output[t] = h
    """

    family, gates = "lstm", 4

    def step(self, gx, gh, state):
        i, f, g, o = (gx + gh).chunk(4, dim=1)  # each (B, K, H, W)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ConvGRU(ConvRecurrent):
    """Convolutional GRU (Ballas et al. 2016), torch's GRU equations with convolutions (``G = 3``, rows
    ``r, z, n``; the reset gate applied after the recurrent convolution, as torch and cuDNN do):

    .. math::

        \\begin{array}{ll}
        r_t = \\sigma(W_{ir} * x_t + b_{ir} + W_{hr} * h_{t-1} + b_{hr}) \\\\
        z_t = \\sigma(W_{iz} * x_t + b_{iz} + W_{hz} * h_{t-1} + b_{hz}) \\\\
        n_t = \\tanh(W_{in} * x_t + b_{in} + r_t ⊙ (W_{hn} * h_{t-1} + b_{hn})) \\\\
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}
        \\end{array}

    Arguments, shapes and parameters: see :class:`ConvRecurrent`.
    """

    family, gates = "gru", 3

    def step(self, gx, gh, state):
        xr, xz, xn = gx.chunk(3, dim=1)  # each (B, K, H, W)
        hr, hz, hn = gh.chunk(3, dim=1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return ((1 - z) * n + z * state[0],)


class ConvRNN(ConvRecurrent):
    """Convolutional Elman RNN (``G = 1``): ``h_t = tanh(W_ih * x_t + b_ih + W_hh * h_{t-1} + b_hh)``.

    Arguments, shapes and parameters: see :class:`ConvRecurrent`.
    """

    family, gates = "rnn", 1

    def step(self, gx, gh, state):
        return (torch.tanh(gx + gh),)
