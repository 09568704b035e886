"""Interleaved medians of Engine.run for model files (no torch needed)."""
import sys, time, json, numpy as np
from lstmlite import runtime
from lstmlite.runtime import Engine
isa = sys.argv[1]; reps = int(sys.argv[2]); files = sys.argv[3:]
runtime.set_isa(isa)
engines = {}
for f in files:
    I = int(f.split("cgm-")[1].split("x")[0])
    x = np.random.default_rng(0).standard_normal((1, 100, I)).astype(np.float32)
    for act in ("dynamic", "float"):
        engines[(f.split("cgm-")[1][:-4], act)] = (Engine(open(f, "rb").read(), activations=act), x)
t = {k: [] for k in engines}
for k, (e, x) in engines.items():
    for _ in range(5): e.run(x)
for _ in range(reps):
    for k, (e, x) in engines.items():
        t0 = time.perf_counter_ns(); e.run(x); t[k].append(time.perf_counter_ns() - t0)
med = {k: float(np.median(v)) / 1e3 for k, v in t.items()}
for k in sorted(med): print(f"{k[0]:16s} {k[1]:8s} {med[k]:9.1f} us", flush=True)
for size in ("40x128", "128x256"):
    for act in ("dynamic", "float"):
        d = med[(f"{size}-dense", act)]
        print(size, act, " ".join(f"{b}: {med[(f'{size}-{b}', act)] / d:.3f}" for b in ("1x4", "8x4")))
