"""``lstmlite bench``: latency of lstmlite's runtime against PyTorch, ONNX Runtime and LiteRT."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import CliError, HelpFormatter, example_epilog, format_bytes, refuse_existing_file


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from ..runtime.bench import ENGINES

    parser = subparsers.add_parser(
        "bench", help="time inference engines on one LSTM/GRU size",
        description="Run the same LSTM/GRU weights in each engine and report the median and p90 latency of "
                    "whole-sequence calls (sequence mode) or single steps with the state carried (step mode, "
                    "time per step), each as a fraction of this core's measured peak MAC rate and with its "
                    "deviation from torch-fp32. Sizes come from the options, or from RUN's model.",
        epilog=example_epilog("lstmlite bench --input-size 40 --hidden-size 128 --seq-len 100",
                              "lstmlite bench --engines lstmlite-int8,onnxruntime-int8 --mode step",
                              "lstmlite bench --sparsity 0.8 --engines lstmlite-int8,lstmlite-int8-sparse,"
                              "onnxruntime-int8",
                              "lstmlite bench runs/jv --batch 32 --json bench.json --chart bench.png",
                              "lstmlite bench --isa avx2 --engines lstmlite-int8-dyn,lstmlite-fp32"),
        formatter_class=HelpFormatter)
    parser.add_argument("run", nargs="?", default=None,
                        help="run dir whose recurrent layers to time (optional); its stored int8 codes or low-rank "
                             "factors are what the lstmlite-int8* engines run, the others its dense weights")
    parser.add_argument("--input-size", type=int, default=40, help="features per step, I")
    parser.add_argument("--hidden-size", type=int, default=128, help="hidden units, H")
    parser.add_argument("--seq-len", type=int, default=100, help="steps per sequence, T")
    parser.add_argument("--batch", type=int, default=1, help="sequences per call, B")
    parser.add_argument("--layers", type=int, default=1, help="stacked layers")
    parser.add_argument("--cell", choices=["lstm", "gru"], default="lstm", help="recurrent cell timed")
    parser.add_argument("--engines", default=None,
                        help=f"comma-separated engines out of {', '.join(ENGINES)} (default: all that are "
                             "installed, the others named in a line; the *-sparse ones only with --sparsity; "
                             "litert-* need pip install 'lstmlite[litert]')")
    parser.add_argument("--mode", choices=["sequence", "step", "both"], default="sequence",
                        help="time whole sequences, one streaming step, or both")
    parser.add_argument("--sparsity", type=float, default=0.0,
                        help="zero this fraction of (1, 4) weight blocks first (all engines run the pruned "
                             "weights; the *-sparse engines skip the zeros)")
    parser.add_argument("--sparse-block", default="1x4", choices=["1x4", "8x4", "16x4"],
                        help="the pruned blocks' rows x columns for --sparsity: 1x4 (four inputs of one row) "
                             "or 8x4 / 16x4 (the same four inputs of 8 or 16 rows: the AVX2 kernels then "
                             "broadcast one activation quad for all of them; default 1x4)")
    parser.add_argument("--rank", type=int, default=0,
                        help="replace every weight matrix by its best rank-R approximation U V first (the "
                             "lstmlite engines run the two factors, the peers the product)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per engine: torch and ONNX Runtime intra-op threads (ONNX Runtime without "
                             "spinning), lstmlite splits a batch over them in sequence mode, at most one thread "
                             "per 4 M multiply-adds of the run (a case's note says when it used fewer; default 1)")
    parser.add_argument("--one-thread-beside", action="store_true",
                        help="with --threads N > 1: also time lstmlite's engines on one thread, in a loop of "
                             "their own where each takes turns with its N-thread run, so the N-thread / 1-thread "
                             "ratio comes from one loop (on a shared machine two runs minutes apart may run at "
                             "different speeds)")
    parser.add_argument("--isa", default=None, metavar="NAME",
                        help="force lstmlite's kernels: portable, avx2, avx2-vnni, avx512, avx512-vnni, neon, "
                             "neon-dotprod or auto (default: LSTMLITE_ISA, else the best this CPU runs); the "
                             "peers pick their own by the CPU, so on a newer CPU this times our AVX2 kernels "
                             "against the peers' AVX-512 ones")
    parser.add_argument("--reps", type=int, default=30, help="timed repetitions (medians of >= 30 are quotable)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed repetitions first")
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="write the results as JSON (a new file unless --force)")
    parser.add_argument("--chart", default=None, metavar="PNG", help="write a bar chart (a new file unless --force)")
    parser.add_argument("--force", action="store_true", help="replace the --json / --chart files if they exist")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..runtime.bench import ENGINES, default_engines, engine_missing, engine_unfit
    from ..runtime.engine import MAX_THREADS

    for option, path in (("--json", args.json), ("--chart", args.chart)):
        if path:  # before minutes of timing, not after
            refuse_existing_file(path, option, args.force)
    if args.engines is None:
        engines, skipped = default_engines([e for e in ENGINES if args.sparsity > 0 or "sparse" not in e],
                                           rank=max(args.rank, 0))
        for line in skipped:
            print(line)
    else:
        engines = [e.strip() for e in args.engines.split(",") if e.strip()]
        if not engines:  # "--engines ," would time nothing and print an empty table
            raise CliError(f"--engines names no engine; choose from {', '.join(ENGINES)}")
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise CliError(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    for engine in engines:
        missing, unfit = engine_missing(engine), engine_unfit(engine, max(args.rank, 0))
        if missing:
            raise CliError(missing)
        if unfit:
            raise CliError(f"{engine} {unfit}")
    for name in ("input_size", "hidden_size", "seq_len", "batch", "layers", "threads", "reps"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        raise CliError("--warmup must be 0 or more")
    if not 0.0 <= args.sparsity < 1.0:
        raise CliError("--sparsity must be in [0, 1)")
    if args.rank < 0:
        raise CliError("--rank must be 0 (full rank) or more")
    if args.threads > MAX_THREADS:
        raise CliError(f"--threads must be at most {MAX_THREADS}")
    if args.one_thread_beside and args.threads < 2:
        raise CliError("--one-thread-beside times 1 thread beside --threads N: give --threads 2 or more")
    if args.isa is None:
        return _bench(args, engines)
    from ..runtime import isa, set_isa

    try:
        previous: str | None = isa()
    except ValueError:  # a bad LSTMLITE_ISA, which --isa replaces
        previous = None
    try:
        set_isa(args.isa)  # the error names the levels this CPU runs
    except ValueError as exc:
        raise CliError(f"--isa: {exc}") from None
    try:
        return _bench(args, engines)
    finally:  # main() called in a process that goes on keeps its table
        if previous is not None:
            set_isa(previous)


def _bench(args: argparse.Namespace, engines: list[str]) -> int:
    """Time the checked engines and print (and write) the results."""
    from ..io import load_run
    from ..runtime.bench import (available_memory_bytes, bar_chart, bench, estimate_memory_bytes, format_table,
                                 module_from_run, stored_form_of_run)

    modes = ["sequence", "step"] if args.mode == "both" else [args.mode]
    if not args.run:
        # --one-thread-beside loads each lstmlite engine twice (its one-thread twin)
        twins = [e for e in engines if e.startswith("lstmlite-")] if args.one_thread_beside else []
        need = estimate_memory_bytes(args.input_size, args.hidden_size, args.seq_len, args.batch, args.layers,
                                     args.cell, engines + twins)
        have = available_memory_bytes()
        if have is not None and need > 0.8 * have:
            raise CliError(f"these sizes need about {format_bytes(need)} of memory (every engine holds its own "
                           f"copy of the weights) but {format_bytes(have)} are available; choose smaller sizes "
                           f"or fewer --engines")
    module = stored = None
    if args.run:
        if not Path(args.run).is_dir():
            raise CliError(f"{args.run}: not a run dir")
        run = load_run(args.run)  # once: both forms come from the one model
        module, _ = module_from_run(run)
        stored = stored_form_of_run(run)
    result = bench(input_size=args.input_size, hidden_size=args.hidden_size, seq_len=args.seq_len,
                   batch=args.batch, engines=engines, modes=modes, threads=args.threads, reps=args.reps,
                   warmup=args.warmup, cell=args.cell, num_layers=args.layers, module=module,
                   sparsity=args.sparsity, rank=args.rank,
                   sparse_block=tuple(int(v) for v in args.sparse_block.split("x")),
                   one_thread_beside=args.one_thread_beside, stored=stored)
    print(format_table(result["cases"]))
    for case in result["cases"]:
        if case.get("note"):
            print(f"{case['engine']} ({case['mode']}): {case['note']}")
    machine = result["machine"]
    print(f"lstmlite kernels: {machine['lstmlite_isa']} (best on this CPU: {machine['lstmlite_best_isa']};"
          " --isa or LSTMLITE_ISA forces one)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.chart:
        print(f"wrote {bar_chart(result['cases'], args.chart)}")
    return 0
