"""Every layer configuration the tests sweep: each family, each variant, with and without layer norm."""

import rnnlab
from rnnlab.layers import variants_of

I, H = 3, 4


def configs():
    """(id, factory(input_size) -> layer, input_size) for every cell and variant."""
    out = []
    for cell in ("rnn", "lstm", "gru"):
        for variant in variants_of(cell):
            size = H if variant in ("mut1", "mut2") else I
            for ln in (False, True):
                name = f"{cell}:{variant}" + (":ln" if ln else "")
                out.append((name, lambda i, c=cell, v=variant, ln=ln, **kw: rnnlab.build_layer(
                    c, i, H, variant=v, layer_norm=ln, **kw), size))
    out.append(("lstm:proj", lambda i, **kw: rnnlab.LSTM(i, H, proj_size=2, **kw), I))
    out.append(("clockwork", lambda i, **kw: rnnlab.ClockworkRNN(i, H, periods=(1, 2, 3), **kw), I))
    out.append(("dglstm", lambda i, **kw: rnnlab.DepthGatedLSTM(i, H, num_layers=2, **kw), I))
    return out


CONFIGS = configs()
IDS = [c[0] for c in CONFIGS]
