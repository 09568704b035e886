"""``lstmlite export RUN --format onnx|c|lsl --out DIR``: a run dir → a deployable artefact.

ONNX goes through :func:`lstmlite.export.onnx.export_onnx`, the native runtime's
``.lsl`` file through :func:`lstmlite.export.lsl.export_lsl`, a C99 project for a
microcontroller through :func:`lstmlite.export.c.export_c`; each artefact is run
against the model it came from (or, for the integer-only C, its NumPy reference)
before the command reports success.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from .common import CliError, HelpFormatter, example_epilog, format_bytes

#: --tolerance when not given: a check beyond it is a bug of ours, worth a report
DEFAULT_TOLERANCE = 1e-3
#: the extension of each format's single-file --out (c writes a folder)
OUT_SUFFIXES = {"onnx": ".onnx", "lsl": ".lsl"}
#: extensions that name an artefact of a format (None: one no format writes)
FOREIGN_SUFFIXES: dict[str, str | None] = {".onnx": "onnx", ".lsl": "lsl", ".c": "c", ".h": "c", ".tflite": None}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a run dir (ONNX, native .lsl, C for microcontrollers)",
        description="Write a run dir's model as a deployable artefact.\n\n"
                    "onnx: standard LSTM/GRU/RNN operators (FastGRNN: a Scan of MatMul/Sigmoid/Tanh), dynamic "
                    "batch and time axes, embedding and head included; inputs 'input' ((B, T) int64 tokens or (B, T, F) float) and, for "
                    "classifiers and forecasters, 'lengths' (B,) int64. The file is run in ONNX Runtime "
                    "against the model after writing (when onnxruntime is installed) and the largest "
                    "difference is printed. --quantize qdq stores weight-quantized tensors as integer codes + "
                    "DequantizeLinear: int8, and int4 packed two per byte (opset 21, chosen when --opset is not "
                    "given; an older --opset stores int4 codes as int8).\n\n"
                    "lsl: the native C runtime's model file (lstmlite.runtime.load reads it); "
                    "--weights auto|fp32|int8|int7|int7r|int8-sparse|int4 (default auto: every matrix as the run has it "
                    "-- float, or its own int8 / int4 codes, int4 stored two per byte -- in its smallest form: "
                    "dense, bitmask-sparse or (1, 4)-block sparse; this file's bytes are the run's size_bytes. "
                    "int8 / int4 round float weights (int7: to int8 codes within [-63, 63], 7-bit weights as "
                    "ONNX Runtime's reduce_range has them, which x86 CPUs without VNNI multiply faster); "
                    "int8-sparse stores the (1, 4) blocks of a block-pruned "
                    "run wherever that beats dense, so the runtime skips the zero ones). The command lists "
                    "each tensor's stored precision and bytes. The file is "
                    "loaded into the runtime and compared with the model on a random batch.\n\n"
                    "A seq2seq run exports as a folder: onnx writes encoder.onnx + decoder_step.onnx (checked "
                    "step by step in ONNX Runtime); lsl writes encoder.lsl + decoder.lsl (the recurrent layers, "
                    "run by the native runtime) + seq2seq.safetensors (embedding, bridge, attention and output "
                    "layer, computed in NumPy), decoded on test sources and compared with the model.\n\n"
                    "c: a self-contained C99 project (model.h / model.c, the runtime's portable core, a Makefile "
                    "for the host and Cortex-M, a README with flash and RAM figures); --form auto|fp32|int8|integer "
                    "(integer: int8 weights and activations, int16 state, no float on the device, calibrated on "
                    "--calibrate N training sequences, of --data for an imported run). It is built for the host and its example run against the "
                    "model (integer: against the integer reference, exactly) when a C compiler is present. "
                    "--form tflite takes a TFLite-quantized LSTM instead of a run dir (RUN = a .tflite file "
                    "holding a fused UNIDIRECTIONAL_SEQUENCE_LSTM with int8 or 16x8 activations) and generates "
                    "C that computes exactly TensorFlow Lite Micro's integers (--tflite-kernel lite: desktop "
                    "TFLite's / LiteRT's), checked against lstmlite.reference.tflite_int. C is the one format a "
                    ".tflite LSTM exports to: --format onnx and lsl refuse it (TFLite's integer arithmetic has no "
                    "ONNX or .lsl form).\n\n"
                    "A file that differs from its model by more than --tolerance is removed and the "
                    "command fails.",
        epilog=example_epilog(
            "lstmlite export runs/jv --format onnx --out deploy/",
            "lstmlite export runs/jv-int8 --format onnx --quantize qdq --out deploy/jv-int8.onnx",
            "lstmlite export runs/imdb --format onnx --probabilities --no-lengths --out deploy/",
            "lstmlite export runs/digits --format onnx --stateful --out deploy/digits-stream.onnx",
            "lstmlite export runs/jv --format lsl --weights int8 --out deploy/",
            "lstmlite export runs/jv --format c --form integer --out deploy/jv-c/",
            "lstmlite export lstm_int8.tflite --format c --form tflite --out deploy/lstm-c/"),
        formatter_class=HelpFormatter)
    parser.add_argument("run", help="run dir (--format c --form tflite: a .tflite file)")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="artefact format")
    parser.add_argument("--out", required=True,
                        help="where to write: onnx: a .onnx file path or a folder (FOLDER/model.onnx); lsl: a .lsl "
                             "file path or a folder (FOLDER/model.lsl); c: a folder (the C project); a seq2seq "
                             "run (onnx, lsl): a folder. A path ending in another format's extension (.onnx, "
                             ".lsl, .c, .h, .tflite) is refused")
    onnx = parser.add_argument_group("onnx")
    onnx.add_argument("--opset", type=int, default=None,
                      help="ONNX opset (default 17, or 21 for --quantize qdq of int4 weights; 14 to the newest "
                           "the installed onnx package knows, another is refused)")
    onnx.add_argument("--no-lengths", action="store_true", help="no 'lengths' input (every sequence is full)")
    onnx.add_argument("--probabilities", action="store_true", help="end with Softmax (classifier / LM)")
    onnx.add_argument("--quantize", choices=["qdq"], default=None,
                      help="store quantized weights as int8 / int4 codes + DequantizeLinear")
    onnx.add_argument("--stateful", action="store_true",
                      help="streaming graph for a unidirectional tagger (CTC) or language model: per layer "
                           "h0_lK/c0_lK inputs and h_n_lK/c_n_lK outputs, run chunk by chunk with the state "
                           "carried (lstmlite.export.OnnxStream); implies --no-lengths")
    onnx.add_argument("--no-check", action="store_true", help="do not run the file in ONNX Runtime afterwards")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help=f"largest abs difference from the model that the check accepts (default "
                             f"{DEFAULT_TOLERANCE:g}); a file beyond it is removed and the command fails")
    lsl = parser.add_argument_group("lsl")
    lsl.add_argument("--weights", choices=["auto", "fp32", "int8", "int7", "int7r", "int8-sparse", "int4"],
                     default=None,
                     help="weight form in the .lsl file (fp32: float matrices stay float, a quantized run's keep "
                          "their codes; a form of fewer bits than a run's own codes, e.g. int4 of an int8 run, is "
                          "refused; int7: int8 codes within [-63, 63], the same size; "
                          "faster dynamic int8 on x86 CPUs without VNNI, coarser rounding; int7r: only the "
                          "recurrent matrices at 7 bits: with dynamic16 activations about int7's speed there at "
                          "less than int8's dynamic error)")
    c = parser.add_argument_group("c")
    c.add_argument("--form", choices=["auto", "fp32", "int8", "integer", "tflite"], default="auto",
                   help="arithmetic of the C project (default auto: the weights as the run has them; "
                        "tflite: a .tflite file's LSTM with TFLite's own arithmetic)")
    c.add_argument("--tflite-kernel", choices=["micro", "lite"], default="micro",
                   help="--form tflite: reproduce TensorFlow Lite Micro's integers (default) or desktop "
                        "TFLite's (LiteRT)")
    c.add_argument("--calibrate", type=int, default=64, metavar="N",
                   help="integer form: training sequences to take the value ranges from (default 64)")
    c.add_argument("--data", default=None, metavar="NAME_OR_PATH",
                   help="integer form: calibrate on this data's training split, prepared as the run's data "
                        "(needed for an imported run, which records no data)")
    parser.set_defaults(func=run)


def _seq2seq_sample(run_dir, n: int = 64):
    from ..train.run import load_run_data

    test = load_run_data(run_dir).test
    return test.x[:n], test.lengths[:n]


def _seq2seq_folder(out: str, files: str) -> Path:
    """--out of a seq2seq export: a folder, refused when named like one file (x.onnx)."""
    path = Path(out)
    if path.suffix.lower() in FOREIGN_SUFFIXES:
        raise CliError(f"--out {out}: a seq2seq model exports as a folder ({files}), not one {path.suffix} file; "
                       f"e.g. --out {path.with_suffix('')}/")
    return path


def _export_seq2seq_onnx(args: argparse.Namespace, run_dir) -> Path:
    from ..export.onnx import INT4_OPSET, read_export_metadata
    from ..export.onnx_seq2seq import check_seq2seq_onnx, export_seq2seq_onnx

    ignored = [flag for flag, given in (("--stateful", args.stateful), ("--no-lengths", args.no_lengths),
                                        ("--probabilities", args.probabilities)) if given]
    if ignored:  # refused rather than silently dropped: the pair would not be what the flag asks for
        raise CliError(f"{' '.join(ignored)}: not for a seq2seq model, whose decoder_step.onnx already carries its "
                       "state (h [c] in, h_out [c_out] out), reads lengths to mask attention and ends with logits; "
                       "export it without " + ("that option" if len(ignored) == 1 else "those options"))
    out = _seq2seq_folder(args.out, "encoder.onnx + decoder_step.onnx")
    if out.exists() and any(out.iterdir()):
        raise CliError(f"{out} exists and is not empty; choose another --out (a seq2seq model is two .onnx files)")
    paths = export_seq2seq_onnx(run_dir.model, out, opset=args.opset, quantize=args.quantize)
    for path in paths:
        print(f"wrote {path} ({format_bytes(path.stat().st_size)})")
    if read_export_metadata(paths[0]).get("int4") == "int8":
        print(f"int4 weights stored as int8 codes, one per byte (opset {args.opset} has no int4 DequantizeLinear); "
              f"the sizes above are those files'; --opset {INT4_OPSET} packs them two per byte")
    if not args.no_check:
        x, lengths = _seq2seq_sample(run_dir)
        error = check_seq2seq_onnx(run_dir.model, out, x, lengths)
        print(f"ONNX Runtime vs lstmlite, decoder step logits on {len(x)} test sources: max abs difference {error:.2e}")
        _enforce(paths, error, args.tolerance)
    return out


def _export_seq2seq_lsl(args: argparse.Namespace, run_dir) -> Path:
    from ..export.lsl import spec_from_module
    from ..export.seq2seq import check_seq2seq_lsl, export_seq2seq_lsl, rounded_reference, rounds_float_weights
    from ..runtime.seq2seq import NativeSeq2Seq
    from ..seq2seq import decode_torch

    out = _seq2seq_folder(args.out, "encoder.lsl + decoder.lsl + seq2seq.safetensors")
    if out.exists() and any(out.iterdir()):
        raise CliError(f"{out} exists and is not empty; choose another --out (a seq2seq model is three files)")
    _refuse_wider_codes(args, {"encoder.lsl ": spec_from_module(run_dir.model.encoder),
                               "decoder.lsl ": spec_from_module(run_dir.model.decoder)})
    paths = export_seq2seq_lsl(run_dir.model, out, weights=args.weights)
    for path in paths:
        print(f"wrote {path} ({format_bytes(path.stat().st_size)})")
    print(f"total {format_bytes(sum(p.stat().st_size for p in paths))}")
    x, lengths = _seq2seq_sample(run_dir)
    same = [a == b for a, b in zip(NativeSeq2Seq(out).decode(x, lengths), decode_torch(run_dir.model, x, lengths))]
    print(f"native runtime vs lstmlite, greedy outputs on {len(x)} test sources: {sum(same)}/{len(same)} identical")
    error = check_seq2seq_lsl(run_dir.model, out, x, lengths)
    print(f"native runtime vs lstmlite, decoder step log-probabilities: max abs difference {error:.2e}")
    if rounds_float_weights(run_dir.model, args.weights):
        # the files round float matrices: held to --tolerance against the run carrying the same codes
        error = check_seq2seq_lsl(rounded_reference(run_dir.model, args.weights), out, x, lengths)
        print(f"  (float encoder / decoder weights rounded to {args.weights} at export; against the run with the "
              f"same {args.weights} codes: max abs difference {error:.2e})")
    _enforce(paths, error, args.tolerance)
    return out


def _export_onnx(args: argparse.Namespace) -> Path:
    from ..export.onnx import INT4_OPSET, check_onnx, export_onnx, read_export_metadata
    from ..io import load_run

    run_dir = load_run(args.run)
    if getattr(run_dir.model, "kind", None) == "seq2seq":
        return _export_seq2seq_onnx(args, run_dir)
    out = Path(args.out)
    path = out if out.suffix.lower() == ".onnx" else out / "model.onnx"
    if path.exists():
        raise CliError(f"{path} exists; choose another --out")
    written = export_onnx(run_dir.model, path, opset=args.opset, lengths=False if args.no_lengths else None,
                          probabilities=args.probabilities, quantize=args.quantize, stateful=args.stateful)
    print(f"wrote {written} ({format_bytes(written.stat().st_size)})")
    _print_standardization(args.run)
    if args.quantize is None:
        _say_float_storage_of_quantized(run_dir.model)
    if read_export_metadata(written).get("int4") == "int8":
        print(f"int4 weights stored as int8 codes, one per byte (opset {args.opset} has no int4 DequantizeLinear); "
              f"the size above is that file's; --opset {INT4_OPSET} packs them two per byte")
    if not args.no_check:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            print("onnxruntime is not installed: not checked (pip install 'lstmlite[onnx]')")
        else:
            error = check_onnx(run_dir.model, written)
            print(f"ONNX Runtime vs lstmlite on a random batch: max abs difference {error:.2e}")
            _enforce(written, error, args.tolerance)
    return written


def _say_float_storage_of_quantized(model) -> None:
    """Tell the user that a quantized run's ONNX file holds its weights as float32 (their
    dequantized values: the same model, about four times the bytes of the codes) and how
    to keep the codes, since the file's size is what they will quote."""
    from ..compress.quantize import quantized_tensors

    bits = sorted({q.bits for q in quantized_tensors(model).values()}, reverse=True)
    if bits:
        kinds = " and ".join(f"int{b}" for b in bits)
        print(f"the run's {kinds} weights are stored as float32 (their dequantized values); "
              f"--quantize qdq stores them as {kinds} codes + DequantizeLinear")


def _enforce(written: Path | list[Path], error: float, tolerance: float) -> None:
    """Remove an artefact (a file, or the files of a seq2seq model) that does not compute
    what its model computes, and fail."""
    paths = written if isinstance(written, list) else [written]
    if not error <= tolerance:  # also catches NaN
        for path in paths:
            path.unlink(missing_ok=True)
        what, removed = ("file differs", str(paths[0])) if len(paths) == 1 else ("files differ", "them")
        raise _beyond_tolerance(what, error, tolerance, removed)


def _beyond_tolerance(what: str, error: float, tolerance: float, removed: str, floor: float = 0.0) -> CliError:
    """The one line of a check beyond --tolerance (``floor``: a bar the check also allows).
    Only a difference the default tolerance refuses too is a bug to report: one beyond a
    stricter --tolerance the user gave is their bar, and the line says so."""
    line = f"the exported {what} from the model by {error:.2e} (> --tolerance {tolerance:g})"
    report = not error <= max(DEFAULT_TOLERANCE, floor)  # the default fails too (NaN included)
    if tolerance == DEFAULT_TOLERANCE:
        return CliError(f"{line}; removed {removed}. Please report this with the run dir.")
    if report:
        return CliError(f"{line}, over the --tolerance you gave and the default {DEFAULT_TOLERANCE:g} too; removed "
                        f"{removed}. Please report this with the run dir.")
    return CliError(f"{line}, over the --tolerance you gave (the default is {DEFAULT_TOLERANCE:g}, which it is "
                    f"within); removed {removed}. Rerun with a larger --tolerance, or without it, to keep the export.")


def _refuse_wider_codes(args: argparse.Namespace, specs: dict) -> None:
    """--weights int4 / int7 / int7r of a run whose matrices are already codes of more bits,
    refused before anything is written, in the option's CLI spelling (the library's
    export functions refuse it too: :func:`lstmlite.export.lsl.wider_codes_refusal`)."""
    from ..export.lsl import source_run_of, wider_codes_refusal

    refusal = wider_codes_refusal(specs, args.weights, source_run_of(args.run), flag="--weights ")
    if refusal is not None:
        raise CliError(refusal)


def _unpacked_note(kept, auto) -> str | None:
    """A line naming the block-sparse matrices this CPU's kernels run dense (``auto``'s
    forms against ``kept``'s, the same file loaded with ``keep_sparse=True``), or None."""
    from ..runtime import isa

    dense = [f"layer {k} {name}" for k, (a, s) in enumerate(zip(auto.info["layers"], kept.info["layers"]))
             for name, key in (("W_ih", "runs_ih"), ("W_hh", "runs_hh")) if s[key] == "int8-sparse" != a[key]]
    if not dense:
        return None
    return (f"on this CPU ({isa()} kernels) {', '.join(dense)} will run dense: their kept blocks are too scattered "
            f"for the sparse kernels to be faster (the file keeps them sparse; prune with taller blocks, e.g. "
            f"block=(16, 4), or keep_sparse=True: docs/runtime.md)")


def _export_lsl(args: argparse.Namespace) -> Path:
    import numpy as np
    import torch

    from ..io import load_run
    from ..export.lsl import (default_weights, export_lsl, has_int8, rounded_reference, rounds_float_weights,
                              spec_from_module)
    from ..runtime import load
    from ..runtime.lsl import describe_lsl
    from .report import format_tensor_sizes

    run_dir = load_run(args.run)
    model = run_dir.model
    if getattr(model, "kind", None) == "seq2seq":
        return _export_seq2seq_lsl(args, run_dir)
    out = Path(args.out)
    path = out if out.suffix.lower() == ".lsl" else out / "model.lsl"
    if path.exists():
        raise CliError(f"{path} exists; choose another --out")
    spec = spec_from_module(model)
    _refuse_wider_codes(args, {"": spec})
    written = export_lsl(args.run, path, weights=args.weights)
    rows = describe_lsl(written.read_bytes())
    print(format_tensor_sizes(rows))
    print(f"wrote {written} ({format_bytes(written.stat().st_size)})")
    _print_standardization(args.run)
    if args.weights == "fp32" and has_int8(spec):
        # write_lsl keeps a matrix's own codes whatever the form: say so, the table shows int8
        print("--weights fp32 keeps float matrices float; this run's quantized matrices keep their own codes "
              "(the file computes what the run computes; the table above shows each tensor's form)")
    narrower = [r["name"] for r in rows if r["dtype"].startswith("int4") and not r["name"].endswith(".mask")]
    if args.weights not in (None, "auto", "fp32", "int4") and narrower:
        # the run's int4 codes are kept under an 8- / 7-bit form: a smaller file than asked, said as fp32's is
        print(f"--weights {args.weights} rounds float matrices to {args.weights}; this run's int4 matrices "
              f"({', '.join(narrower[:3])}{', ...' if len(narrower) > 3 else ''}) keep their own codes (the file "
              "computes what the run computes; the table above shows each tensor's form)")
    engine = load(written, keep_sparse=True)  # the file's own form: sparse matrices on the sparse kernels
    note = _unpacked_note(engine, load(written))
    if note:
        print(note)
    x = _example_input(model)

    def outputs(m) -> np.ndarray:
        with torch.no_grad():
            y = m(torch.as_tensor(x))
        return (y[0] if isinstance(y, tuple) else y).numpy()

    expected = outputs(model)
    got = engine.run(x).reshape(expected.shape)
    error = float(np.max(np.abs(got - expected)))
    weights = default_weights(spec, args.weights)  # what export_lsl wrote
    if not rounds_float_weights(spec, weights):
        print(f"native runtime vs lstmlite on a random batch: max abs difference {error:.2e}")
        _enforce(written, error, args.tolerance)
        return written
    # the export rounded float matrices: the file is checked against the run with those same codes
    try:
        reference = rounded_reference(model, weights)
    except ValueError as err:
        print(f"native runtime vs lstmlite on a random batch: max abs difference {error:.2e}")
        print(f"(float weights of the run were rounded to {weights} at export, so the difference includes that "
              f"rounding and is not held to --tolerance ({err}); quantize the whole run first, e.g. "
              "`lstmlite compress RUN --recipe int8`, for an exact check)")
        return written
    exact = float(np.max(np.abs(got - outputs(reference))))
    print(f"native runtime vs lstmlite with the same {weights} codes on a random batch: max abs difference {exact:.2e}")
    print(f"(float weights of the run were rounded to {weights} at export: that rounding moves the outputs by up to "
          f"{error:.2e} from the float run)")
    _enforce(written, exact, args.tolerance)
    return written


def _export_c(args: argparse.Namespace) -> Path:
    import torch

    from ..export.c import export_c
    from ..export.c.check import check_on_host
    from ..export.preprocessing import standardization_of
    from ..io import load_run
    from ..train.run import load_run_data

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise CliError(f"{out} exists and is not empty; choose another --out")
    _refuse_ignored_c_options(args)
    if args.data is not None and args.form != "integer":
        raise CliError(f"--data is for --form integer (its calibration data); --form {args.form} needs none")
    if args.form == "tflite":
        return _export_c_tflite(args, out)
    if Path(args.run).suffix == ".tflite":
        from ..export._tflite_source import float_tflite_refusal

        raise CliError(float_tflite_refusal(args.run, "c")
                       or f"{args.run}: a .tflite file exports with --form tflite (TFLite's own arithmetic), "
                          f"not --form {args.form}")
    run_dir = load_run(args.run)
    if getattr(run_dir.model, "kind", None) == "seq2seq":
        raise CliError(f"{args.run}: a seq2seq model has no C export (its attention runs outside the C core); "
                       "export it with --format lsl or --format onnx")
    calibration = None
    if args.form == "integer":
        if args.calibrate < 1:
            raise CliError("--calibrate must be at least 1")
        train = load_run_data(run_dir, args.data).train
        n = min(args.calibrate, len(train.x))
        calibration = [{"x": torch.as_tensor(train.x[:n]), "lengths": torch.as_tensor(train.lengths[:n])}]
    project = export_c(run_dir.model, out, form=args.form, calibration=calibration,
                       standardization=standardization_of(args.run))
    _print_memory(project)
    print(f"wrote {out} ({project.form}; make host / make mcu / make run-mcu)")
    if project.standardization is not None:
        print(project.standardization.note(str(Path(args.run) / "config.json"),
                                           f"lstmlite_model_prepare(raw, x) of {out / 'preprocess.h'}",
                                           "lstmlite_model_forecast_value(out[k])"))
    try:
        error, scale = check_on_host(project, run_dir.model, project.example)
    except FileNotFoundError as err:
        print(f"not checked ({err})")
        return out
    if project.integer is not None:
        print(f"host build vs the integer reference on the example: max abs difference {error:g}")
        if error != 0:
            _remove_project(out)
            raise CliError(f"the generated C differs from the integer reference by {error:g}; removed {out}. Please "
                           "report this with the run dir.")
    else:
        # the int8 form rounds float matrices to int8 codes: it is checked against the model with those codes,
        # except where no PyTorch model carries them (a low-rank product under a pruning mask is rounded as one
        # dense matrix): the check then compares with the unrounded model, as --format lsl does
        from ..export.lsl import no_rounded_reference

        unrounded = no_rounded_reference(run_dir.model, "int8") if project.form == "int8" else None
        if unrounded is not None:  # no model carries those codes: the check measures the rounding too
            print(f"host build vs lstmlite on the example: max abs difference {error:.2e}")
            print(f"(float weights of the run were rounded to int8 at export, so the difference includes that "
                  f"rounding and is not held to --tolerance ({unrounded}); --form auto stores the run's matrices "
                  "as they are and is checked exactly)")
            return out
        what = "lstmlite with the same int8 codes" if project.form == "int8" else "lstmlite"
        print(f"host build vs {what} on the example: max abs difference {error:.2e}")
        # the default bar also allows float32's own rounding of large outputs (1e-5 of their scale);
        # a --tolerance the user gives is their bar, held exactly as --format lsl / onnx hold it
        floor = 1e-5 * scale if args.tolerance == DEFAULT_TOLERANCE else 0.0
        if not error <= max(args.tolerance, floor):
            _remove_project(out)
            raise _beyond_tolerance("C project differs", error, args.tolerance, str(out), floor=floor)
    return out


def _print_standardization(run: str) -> None:
    """For a run trained on standardised features: the line that says a raw value must be
    standardised before the exported file reads it (the file holds the weights, not the
    statistics; a raw input gives wrong answers and no error)."""
    from ..export.preprocessing import standardization_of

    standardization = standardization_of(run)
    if standardization is not None:
        python = f"lstmlite.export.preprocessing.standardization_of({str(run)!r})"
        print(standardization.note(str(Path(run) / "config.json"), f"{python}.inputs(raw)",
                                   f"{python}.forecast_units(y)"))


def _print_memory(project) -> None:
    """Print each CPU's flash and RAM for a written C project, every byte count grouped
    by thousands (``RAM 4,608 B (state 512 B, scratch 2,728 B, stack 1,368 B)``)."""
    for cpu, report in project.memory.items():
        print(f"{cpu}: flash {format_bytes(report.flash)} (weights {format_bytes(report.weights)}), "
              f"RAM {format_bytes(report.ram)} (state {report.state:,} B, scratch {report.work:,} B, "
              f"stack {report.stack:,} B)")


def _format_options(args: argparse.Namespace) -> dict[str, tuple[str, bool]]:
    """Each option only one format reads: that format, and whether it was given (a value
    other than its default). The one table both refusals below read."""
    return {"--form": ("c", args.form != "auto"), "--tflite-kernel": ("c", args.tflite_kernel != "micro"),
            "--calibrate": ("c", args.calibrate != 64), "--data": ("c", args.data is not None),
            "--weights": ("lsl", args.weights is not None),
            "--opset": ("onnx", args.opset is not None), "--no-lengths": ("onnx", args.no_lengths),
            "--probabilities": ("onnx", args.probabilities), "--quantize": ("onnx", args.quantize is not None),
            "--stateful": ("onnx", args.stateful), "--no-check": ("onnx", args.no_check)}


def _refuse_ignored_c_options(args: argparse.Namespace) -> None:
    """--format c with an option it would ignore (another format's, or another form's) is an
    error, not a project made without it: --weights int8 gave an fp32 project, --no-check
    still built and checked it."""
    given = [flag for flag, (fmt, on) in _format_options(args).items() if on and fmt == "onnx"]
    if given:
        why = " (the C project is always built and checked on the host when a C compiler is there)" \
            if args.no_check else ""
        raise CliError(f"{', '.join(given)}: for --format onnx, not --format c{why}")
    if args.weights is not None:
        raise CliError(f"--weights is for --format lsl; the C project's weights follow --form (auto: as the run has "
                       f"them, fp32, int8, integer), e.g. --form {'int8' if args.weights.startswith('int') else 'fp32'}")
    given_c = {flag for flag, (fmt, on) in _format_options(args).items() if on and fmt == "c"}
    if "--calibrate" in given_c and args.form != "integer":
        raise CliError(f"--calibrate is for --form integer (its calibration data); --form {args.form} needs none")
    if "--tflite-kernel" in given_c and args.form != "tflite":
        raise CliError(f"--tflite-kernel is for --form tflite (a .tflite file's LSTM); --form {args.form} runs "
                       "lstmlite's own arithmetic")


def _remove_project(out: Path) -> None:
    """Remove a generated project that failed its check (--out was empty or absent before)."""
    import shutil

    shutil.rmtree(out, ignore_errors=True)


def _export_c_tflite(args: argparse.Namespace, out: Path) -> Path:
    """--form tflite: a .tflite file's LSTM → C with TFLite's arithmetic, checked on the host."""
    from ..export.c import export_c
    from ..export.c.check import check_on_host

    src = Path(args.run)
    if src.suffix != ".tflite" or not src.is_file():
        advice = ", so export it with --form integer instead"
        if (src / "config.json").is_file():  # a run the integer form refuses too: that refusal's advice
            from ..export.c import UnsupportedForm, tflite_params_of
            from ..io import load_run

            try:
                tflite_params_of(load_run(src).model)
            except UnsupportedForm as err:
                advice = f"; nearest supported form: {err.nearest}"
        raise CliError(f"{src}: --form tflite needs a .tflite file (a TFLite-quantized LSTM); a run dir holds no "
                       f"TFLite quantization{advice}")
    try:
        project = export_c(src, out, form="tflite", tflite_kernel=args.tflite_kernel)
    except ImportError as err:
        raise CliError(f"{src}: reading a .tflite file needs LiteRT and TensorFlow's schema module ({err}); "
                       "pip install 'lstmlite[litert]'") from None
    _print_memory(project)
    print(f"wrote {out} (tflite, {args.tflite_kernel} kernel; make host / make mcu / make run-mcu)")
    if project.info.get("time_major"):
        print(f"the .tflite LSTM is time-major (input {project.info['tflite_input_shape']} = (T, B, I)): the project "
              "runs one sequence at a time, so feed sequence b's steps input[:, b, :] one after another (model.h "
              "says so)")
    try:
        error, _ = check_on_host(project, None, project.example)
    except FileNotFoundError as err:
        print(f"not checked ({err})")
        return out
    print(f"host build vs TFLite's arithmetic (lstmlite.reference.tflite_int) on the example: max abs difference "
          f"{error:g}")
    if error != 0:
        _remove_project(out)
        raise CliError(f"the generated C differs from TFLite's arithmetic by {error:g}; removed {out}. Please report "
                       f"this with {src}.")
    return out


def _example_input(model):
    import numpy as np

    rng = np.random.default_rng(0)
    if getattr(model, "vocab_size", 0):
        return rng.integers(1, model.vocab_size, size=(2, 12)).astype(np.int64)
    return rng.standard_normal((2, 12, model.input_size)).astype(np.float32)


#: format name → function(args) -> written path
FORMATS: dict[str, Callable[[argparse.Namespace], Path]] = {"onnx": _export_onnx, "lsl": _export_lsl, "c": _export_c}


def run(args: argparse.Namespace) -> int:
    import math

    if not (math.isfinite(args.tolerance) and args.tolerance >= 0):
        raise CliError(f"--tolerance must be a finite number >= 0, got {args.tolerance:g}; e.g. --tolerance 1e-3")
    if args.format != "c":
        from ..export._tflite_source import tflite_refusal

        refusal = tflite_refusal(args.run, args.format)  # a .tflite file: before any run dir is read
        if refusal is not None:
            raise CliError(refusal)
        _refuse_other_formats_options(args)
    _refuse_foreign_out(args)
    if args.format == "onnx":
        from ..export.onnx import check_opset

        try:
            check_opset(args.opset)  # before any run is read or graph built
        except ValueError as err:
            raise CliError(f"--opset: {err}") from None
    FORMATS[args.format](args)
    return 0


def _refuse_foreign_out(args: argparse.Namespace) -> None:
    """An --out named for another format's artefact is an error, not a folder of that name:
    --format lsl --out x.onnx wrote x.onnx/model.lsl."""
    suffix = Path(args.out).suffix.lower()
    if suffix not in FOREIGN_SUFFIXES or suffix == OUT_SUFFIXES.get(args.format):
        return
    named = FOREIGN_SUFFIXES[suffix]
    whose = {None: f"lstmlite writes no {suffix} file (it reads one, with --format c --form tflite)",
             "c": f"a {suffix} name is one C file, and --format c writes a project folder (model.h, model.c, ...)"
             }.get(named, f"a {suffix} path is for --format {named}")
    takes = {"onnx": "a .onnx file path or a folder", "lsl": "a .lsl file path or a folder",
             "c": "a folder"}[args.format]
    stem = Path(args.out).with_suffix("")
    example = stem.with_suffix(OUT_SUFFIXES[args.format]) if args.format in OUT_SUFFIXES else f"{stem}/"
    raise CliError(f"--out {args.out}: {whose}; --format {args.format} takes {takes} (e.g. --out {example})")


def _refuse_other_formats_options(args: argparse.Namespace) -> None:
    """--format onnx or lsl with an option only another format reads is an error, not a file
    made without it (as --format c refuses theirs): --form integer --calibrate 5 with
    --format lsl wrote the run's float weights without a word."""
    given = [(flag, fmt) for flag, (fmt, on) in _format_options(args).items() if on and fmt != args.format]
    if given:
        flags = ", ".join(flag for flag, _ in given)
        formats = " / ".join(sorted({f"--format {fmt}" for _, fmt in given}))
        why = {"lsl": " (the .lsl file is always checked in the native runtime)" if args.no_check else
               " (its weights follow --weights)" if args.form != "auto" else "",
               "onnx": " (its weights are the run's, as QDQ codes with --quantize qdq)"
               if args.weights is not None or args.form != "auto" else ""}[args.format]
        raise CliError(f"{flags}: for {formats}, not --format {args.format}{why}")
