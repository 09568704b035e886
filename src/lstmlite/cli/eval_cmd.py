"""``lstmlite eval RUN``: re-measure a run dir on its data or on another file."""

from __future__ import annotations

import argparse
import json

from .common import CliError, HelpFormatter, example_epilog
from .report import format_tensor_sizes, print_metrics


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate a run dir",
        description="Rebuild a run dir's model and measure it on the test split of its data (or on "
                    "--data, prepared the same way: same vocabulary and normalisation).",
        epilog=example_epilog("lstmlite eval runs/jv", "lstmlite eval runs/jv --split val --json",
                              "lstmlite eval runs/jv-int4 --sizes",
                              "lstmlite eval runs/digits-int8 --stream --lsl out/model.lsl",
                              "lstmlite eval runs/textnorm --decoder beam --beam 8"),
        formatter_class=HelpFormatter)
    parser.add_argument("run", help="run dir")
    parser.add_argument("--data", default=None,
                        help="evaluate on this data instead: a built-in name or file, read with the run's data "
                             "options (its vocabulary, classes, normalisation) and split with the run's "
                             "val/test fractions, so --split picks which part of it is scored (to score a whole "
                             "file, give it as data.test_path when training)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"],
                        help="the part of the data to score (default: test)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--sizes", action="store_true",
                        help="also list the .lsl file `export --format lsl` would write, tensor by tensor "
                             "(stored precision and bytes; they sum to size_bytes)")
    parser.add_argument("--decoder", default="greedy", choices=["greedy", "beam"],
                        help="ctc runs: greedy (best path) or beam (prefix beam search) decoding, also with "
                             "--stream; seq2seq runs: greedy or beam search")
    parser.add_argument("--beam", type=int, default=None,
                        help="beam width with --decoder beam (default: 8 for ctc, 4 for seq2seq)")
    parser.add_argument("--stream", action="store_true",
                        help="ctc runs: decode the split frame by frame in the native runtime (state carried) "
                             "and report CER/WER, agreement with PyTorch, latency per frame and real-time factor")
    parser.add_argument("--lsl", default=None, help="with --stream: the exported .lsl file to run "
                                                    "(default: the run's model exported in memory)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..train import evaluate_run

    if args.beam is not None and args.beam < 1:
        raise CliError(f"--beam {args.beam}: the beam width must be at least 1")
    if args.beam is not None and args.decoder != "beam":  # it was ignored without a word
        raise CliError(f"--beam {args.beam} is the width of --decoder beam (ctc and seq2seq runs); add "
                       "--decoder beam, or leave --beam out for greedy decoding")
    if args.stream or args.lsl:  # --lsl FILE streams FILE (its help: the file --stream runs)
        return _stream(args)
    metrics = evaluate_run(args.run, source=args.data, split=args.split, decoder=args.decoder, beam=args.beam)
    sizes = _sizes(args.run) if args.sizes else None
    if args.json:
        print(json.dumps(metrics if sizes is None else {**metrics, "tensors": sizes}, indent=2))
        return 0
    print_metrics(metrics, split=args.split)
    if sizes is not None:
        print()
        print(format_tensor_sizes(sizes) if sizes else "no .lsl file: the native runtime cannot run this model")
    return 0


def _stream(args: argparse.Namespace) -> int:
    from ..train.streaming import evaluate_streaming

    result = evaluate_streaming(args.run, lsl=args.lsl, split=args.split, source=args.data,
                                decoder=args.decoder, beam=args.beam or 8)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"streamed {result['utterances']} utterances ({result['frames']} frames, "
          f"{result['audio_seconds']:.1f} s of audio) through the native runtime ({result['engine']}, "
          f"{result['decoder']} decoding):")
    print(f"  CER {result['cer']:.4f}  WER {result['wer']:.4f}  exact {result['sequence_accuracy']:.4f}  "
          f"same as PyTorch {result['agreement']:.4f}")
    # the mean first, named: it carries the rare slow frames (a decoder's flush, the OS), which
    # the percentiles leave out, and it is what the real-time factor is made of
    print(f"  latency per frame: mean {result['us_per_frame']:.1f} us, p50 {result['p50_us']:.1f} us, "
          f"p90 {result['p90_us']:.1f} us  real-time factor {result['rtf']:.5f}")
    return 0


def _sizes(run_dir: str) -> list[dict]:
    from ..export.size import account
    from ..io import load_run

    return account(load_run(run_dir).model).tensors
