import torch
from lstmlite.runtime.lsl import spec_from_module, write_lsl
from lstmlite.runtime.bench import prune_blocks
for I,H in [(40,128),(128,256)]:
    for blk in [None,(1,4),(8,4)]:
        torch.manual_seed(0)
        m = torch.nn.LSTM(I, H, batch_first=True)
        if blk: prune_blocks(m, 0.8, blk)
        w = "int8-sparse" if blk else "int8"
        name = f"/tmp/cgm-{I}x{H}-{'dense' if not blk else '%dx%d'%blk}.lsl"
        open(name,"wb").write(write_lsl(spec_from_module(m), weights=w))
        print(name)
