"""Every layer configuration the tests sweep: each family, each variant, with and without layer norm."""

import rnnlab
from rnnlab.layers import variants_of

I, H = 3, 4


#: the families beyond the classic cells (issue 14), two layers each so that the stacking is covered
MODERN = [
    ("indrnn", lambda i, **kw: rnnlab.IndRNN(i, H, num_layers=2, max_len=6, **kw), I),
    ("mingru", lambda i, **kw: rnnlab.MinGRU(i, H, num_layers=2, **kw), I),
    ("minlstm", lambda i, **kw: rnnlab.MinLSTM(i, H, num_layers=2, **kw), I),
    ("lru", lambda i, **kw: rnnlab.LRU(i, H, num_layers=2, state_size=3, **kw), I),
    ("rglru", lambda i, **kw: rnnlab.RGLRU(i, H, num_layers=2, num_heads=2, **kw), I),
    ("mlstm", lambda i, **kw: rnnlab.MLSTM(i, H, num_layers=2, num_heads=2, **kw), I),
    ("slstm", lambda i, **kw: rnnlab.SLSTM(i, H, num_layers=2, num_heads=2, **kw), I),
    ("slstm:exp_forget", lambda i, **kw: rnnlab.SLSTM(i, H, variant="exp_forget", **kw), I),
]


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
    out.extend(MODERN)
    return out


CONFIGS = configs()
IDS = [c[0] for c in CONFIGS]
