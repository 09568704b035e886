"""``lstmlite export RUN --format onnx|c|lsl --out DIR``: a run dir → a deployable artefact.

ONNX is written here (:func:`lstmlite.export.onnx.export_onnx`); other formats are
looked up in :data:`FORMATS`, which their modules fill (``register_format``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from .common import CliError, HelpFormatter, example_epilog, format_bytes

#: format name → function(args) -> written path. ONNX is built in; "c" and "lsl" are
#: registered by their modules with :func:`register_format`.
FORMATS: dict[str, Callable[[argparse.Namespace], Path]] = {}
KNOWN_FORMATS = ("onnx", "c", "lsl")


def register_format(name: str, fn: Callable[[argparse.Namespace], Path]) -> None:
    """Make ``lstmlite export --format NAME`` call ``fn(args)`` (args.run, args.out, …)."""
    FORMATS[name] = fn


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a run dir (ONNX, C, .lsl)",
        description="Write a run dir's model as a deployable artefact.\n\n"
                    "onnx: standard LSTM/GRU/RNN operators, dynamic batch and time axes, embedding and "
                    "head included; inputs 'input' ((B, T) int64 tokens or (B, T, F) float) and, for "
                    "classifiers and forecasters, 'lengths' (B,) int64. The file is run in ONNX Runtime "
                    "against the model after writing (when onnxruntime is installed) and the largest "
                    "difference is printed. --quantize qdq stores weight-quantized tensors as int8 + "
                    "DequantizeLinear.",
        epilog=example_epilog(
            "lstmlite export runs/jv --format onnx --out deploy/",
            "lstmlite export runs/jv-int8 --format onnx --quantize qdq --out deploy/jv-int8.onnx",
            "lstmlite export runs/imdb --format onnx --probabilities --no-lengths --out deploy/"),
        formatter_class=HelpFormatter)
    parser.add_argument("run", help="run dir")
    parser.add_argument("--format", required=True, choices=KNOWN_FORMATS, help="artefact format")
    parser.add_argument("--out", required=True, help="output folder (or, for onnx, a .onnx file path)")
    onnx = parser.add_argument_group("onnx")
    onnx.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17, at least 14)")
    onnx.add_argument("--no-lengths", action="store_true", help="no 'lengths' input (every sequence is full)")
    onnx.add_argument("--probabilities", action="store_true", help="end with Softmax (classifier / LM)")
    onnx.add_argument("--quantize", choices=["qdq"], default=None,
                      help="store quantized weights as int8 + DequantizeLinear")
    onnx.add_argument("--no-check", action="store_true", help="do not run the file in ONNX Runtime afterwards")
    parser.set_defaults(func=run)


def _export_onnx(args: argparse.Namespace) -> Path:
    from ..export.onnx import DEFAULT_OPSET, check_onnx, export_onnx
    from ..io import load_run

    run_dir = load_run(args.run)
    out = Path(args.out)
    path = out if out.suffix == ".onnx" else out / "model.onnx"
    if path.exists():
        raise CliError(f"{path} exists; choose another --out")
    written = export_onnx(run_dir.model, path, opset=args.opset or DEFAULT_OPSET,
                          lengths=False if args.no_lengths else None, probabilities=args.probabilities,
                          quantize=args.quantize)
    print(f"wrote {written} ({format_bytes(written.stat().st_size)})")
    if not args.no_check:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            print("onnxruntime is not installed: not checked (pip install 'lstmlite[onnx]')")
        else:
            error = check_onnx(run_dir.model, written)
            print(f"ONNX Runtime vs lstmlite on a random batch: max abs difference {error:.2e}")
    return written


FORMATS["onnx"] = _export_onnx


def run(args: argparse.Namespace) -> int:
    handler = FORMATS.get(args.format)
    if handler is None:
        raise CliError(f"--format {args.format} is not available in this build of lstmlite")
    handler(args)
    return 0
