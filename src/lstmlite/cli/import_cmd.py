"""``lstmlite import torch|keras|onnx|tflite FILE --out RUN``: a model from another framework → a run dir."""

from __future__ import annotations

import argparse
import json

from .common import CliError, HelpFormatter, example_epilog, format_bytes, format_table


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import", help="import a PyTorch, Keras, ONNX or TFLite model as a run dir",
        description="Bring an LSTM/GRU model from another framework into lstmlite and write it as a run dir "
                    "(then compress, export or benchmark it like a model trained here).\n\n"
                    "torch: a state_dict file (.pt/.pth read with weights_only=True, or .safetensors); "
                    "--arch gives what the weights do not say (kind, pooling, …) as JSON or a run dir.\n"
                    "keras: a .keras file (Keras 3, PyTorch backend, checked against Keras) or a legacy .h5.\n"
                    "onnx: a graph with LSTM/GRU/RNN operators (PyTorch's exporter, tf2onnx, lstmlite), "
                    "checked against ONNX Runtime.\n"
                    "tflite: a float32 .tflite with fused UNIDIRECTIONAL_SEQUENCE_LSTM ops (a tf_keras LSTM "
                    "converted without quantization), checked against LiteRT; an int8 one exports as it is "
                    "(lstmlite export FILE --format c --form tflite).\n\n"
                    "The imported model returns logits: a final softmax is dropped and recorded in "
                    "config.json under import.output_activation.",
        epilog=example_epilog(
            "lstmlite import keras sentiment.keras --out runs/sentiment",
            "lstmlite import torch weights.pt --arch '{\"kind\": \"classifier\", \"pooling\": \"last\"}' --out runs/pt",
            "lstmlite import onnx model.onnx --out runs/from-onnx",
            "lstmlite import tflite model.tflite --out runs/from-tflite"),
        formatter_class=HelpFormatter)
    parser.add_argument("framework", choices=["torch", "keras", "onnx", "tflite"], help="where the model comes from")
    parser.add_argument("file", help="the model file")
    parser.add_argument("--out", required=True, help="run dir to create")
    parser.add_argument("--force", action="store_true",
                        help="replace a run dir of lstmlite's at --out (a folder holding other files is still refused)")
    parser.add_argument("--arch", default=None,
                        help="torch: architecture as a JSON string, a JSON file or a run dir (our model config)")
    parser.add_argument("--kind", choices=["classifier", "lm", "forecaster", "tagger"], default=None,
                        help="onnx/tflite/torch: the model kind when it cannot be read from the file "
                             "(torch: must agree with a kind in --arch)")
    parser.add_argument("--no-verify", action="store_true",
                        help="keras/onnx/tflite: skip running the source model to check the import")
    parser.set_defaults(func=run)


def _arch(text: str | None, kind: str | None) -> dict | str | None:
    """--arch (JSON text, JSON file or run dir) with --kind folded in.

    When both name a model kind they must agree: ``--arch '{"kind": "lm"}' --kind
    tagger`` is refused (a CliError naming both) rather than one silently winning.
    """
    arch: dict | str | None = text
    if text is not None and text.strip().startswith("{"):
        try:
            arch = json.loads(text)
        except json.JSONDecodeError as err:
            raise CliError(f"--arch is not valid JSON ({err})") from None
    if kind:
        from ..importers.torch import read_arch

        read = read_arch(arch)
        if read.get("kind") not in (None, kind):
            raise CliError(f"--arch says kind {read['kind']!r} but --kind says {kind!r}; "
                           "give one of them, or the same kind in both")
        arch = {**read, "kind": kind}
    return arch


def run(args: argparse.Namespace) -> int:
    if args.framework == "torch":
        from ..importers.torch import import_torch

        model = import_torch(args.file, arch=_arch(args.arch, args.kind), out=args.out, overwrite=args.force)
    elif args.framework == "keras":
        if args.arch or args.kind:
            raise CliError("--arch/--kind are for torch and onnx imports; a Keras file says its architecture")
        from ..importers.keras import import_keras

        model = import_keras(args.file, out=args.out, verify=not args.no_verify, overwrite=args.force)
    else:
        if args.arch:
            raise CliError("--arch is for torch imports")
        if args.framework == "tflite":
            from ..importers.tflite import import_tflite as importer
        else:
            from ..importers.onnx import import_onnx as importer

        model = importer(args.file, out=args.out, kind=args.kind, verify=not args.no_verify, overwrite=args.force)
    from ..io import read_json

    metrics = read_json(f"{args.out}/metrics.json")
    info = model.import_info
    rows = [("model", type(model).__name__), ("cell", getattr(model, "cell", "")),
            ("params", metrics.get("params", "")), ("size", format_bytes(metrics.get("size_bytes", 0))),
            ("output activation dropped", info.get("output_activation") or "none")]
    if info.get("cell_clip"):  # TFLite's clip of the cell state, which our LSTM does not apply
        rows.append(("cell clip (not kept)", f"±{info['cell_clip']:g}"))
    if "verified_max_error" in info:
        rows.append(("max difference vs source", f"{info['verified_max_error']:.2e}"))
    print(format_table(rows, ["", "value"]))
    print(f"wrote {args.out}")
    if info.get("dequantized"):  # the size above is a float run's, bigger than the quantized file
        print(f"the file's weights were quantized (DequantizeLinear): imported as their float values, so this run "
              f"is float; `lstmlite compress {args.out} --recipe int8 --out RUN` stores int8 codes again")
    return 0
