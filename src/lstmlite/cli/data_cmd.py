"""``lstmlite data list | show NAME | make spoken-digits|text-norm --out DIR``: the
built-in data sets, and data sets lstmlite synthesizes."""

from __future__ import annotations

import argparse
import json

from .common import CliError, HelpFormatter, example_epilog, format_table, parse_overrides


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data", help="list, inspect or synthesize data sets",
        description="List the built-in data sets (they ship with installed packages, no download), "
                    "show one's shapes, classes and lengths, or synthesize one (spoken digits or "
                    "words, text normalization). Any file path works wherever a "
                    "data name does: CSV/JSONL text, plain text, TREC .label, UCR/UEA .ts, .npz, .npy.",
        epilog=example_epilog("lstmlite data list", "lstmlite data list --json", "lstmlite data show japanese_vowels",
                              "lstmlite data show data/trec/train_5500.label --task classify",
                              "lstmlite data show reviews.csv --data.label_column=sentiment --data.min_freq=2",
                              "lstmlite data make spoken-digits --out data/digits --n 600 --seed 0",
                              "lstmlite data make spoken-words --out data/words --words yes,no,stop,go",
                              "lstmlite data make text-norm --out data/textnorm --n 3000 --seed 0"),
        formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="list|show|make")
    listing = sub.add_parser("list", help="list the built-in data sets")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show = sub.add_parser("show", help="describe one data set (built-in name or file)",
                          description="Describe a data set as training would load it; data options go as "
                                      "--data.KEY=VALUE, as for lstmlite train (e.g. --data.label_column=sentiment "
                                      "--data.min_freq=2).")
    show.add_argument("name")
    show.add_argument("--task", default=None, help="classify | lm | forecast | tag | ctc | seq2seq (for files)")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(accepts_overrides=True)
    make = sub.add_parser("make", help="synthesize a data set (spoken-digits/-words: needs espeak-ng; "
                                       "text-norm: Babel)",
                          description="spoken-digits: digit sequences spoken by espeak-ng in several voices, "
                                      "speeds and pitches with added noise, as WAV files plus manifest.tsv "
                                      "(train on it with --task ctc). spoken-words: the same with sequences of "
                                      "words (--words; default the ten Speech Commands keywords), transcribed "
                                      "as the words. text-norm: dates, times, numbers and "
                                      "money as written in en/de/fr/es/it (CLDR locale data via Babel) paired "
                                      "with their ISO form, both directions, as pairs.tsv (train on it with "
                                      "--task seq2seq). Same --seed, same files.")
    make.add_argument("kind", choices=["spoken-digits", "spoken-words", "text-norm"])
    make.add_argument("--out", required=True, help="folder to create")
    make.add_argument("--n", type=int, default=None, help="utterances / pairs (default 600 / 3000)")
    make.add_argument("--languages", default=None,
                      help="text-norm: comma-separated languages (default en,de,fr,es,it)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--max-digits", type=int, default=5,
                      help="digits (spoken-words: words) per utterance, 1 to this (default 5)")
    make.add_argument("--words", default=None,
                      help="spoken-words: comma-separated lower-case words (default "
                           "yes,no,up,down,left,right,on,off,stop,go)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import describe_dataset, list_datasets

    if args.data_command == "make" and args.kind == "text-norm":
        from ..data.textnorm import LOCALES, make_text_norm

        n = 3000 if args.n is None else args.n
        languages = tuple(args.languages.split(",")) if args.languages else tuple(LOCALES)
        path = make_text_norm(args.out, n=n, seed=args.seed, languages=languages)
        print(f"wrote {n} text-normalization pairs to {path}")
        return 0
    if args.data_command == "make":
        from ..data.synth import make_spoken_digits

        n = 600 if args.n is None else args.n
        words = None
        if args.kind == "spoken-words":
            from ..data.synth import COMMAND_WORDS

            words = args.words.split(",") if args.words else list(COMMAND_WORDS)
        elif args.words:
            raise CliError("--words goes with spoken-words (spoken-digits speaks digits)")
        out = make_spoken_digits(args.out, n=n, seed=args.seed, max_digits=args.max_digits, words=words)
        print(f"wrote {n} utterances to {out} (manifest.tsv)")
        return 0
    if args.data_command == "list":
        if args.json:
            print(json.dumps(list_datasets(), indent=2, default=str))
            return 0
        rows = [(d["name"], d["task"], d.get("n_classes", ""), d.get("size", d.get("n_series", "")),
                 d.get("description", "")) for d in list_datasets()]
        print(format_table(rows, ["name", "task", "classes", "size", "description"]))
        return 0
    options = _data_options(args.overrides)
    if args.task is not None:
        options["task"] = args.task
    info = describe_dataset(args.name, **options)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(format_table(show_rows(info), ["field", "value"]))
    return 0


#: DataSpec keys that only some data use (``data show``'s table leaves the others out;
#: ``--json`` has every key): text tokenization, audio features, windows of a series.
_TEXT_KEYS = {"level", "max_vocab", "min_freq", "max_len"}
_AUDIO_KEYS = {"features", "n_features", "sample_rate", "hop_ms"}


def _spec_key_applies(key: str, info: dict) -> bool:
    spec, task = info["spec"], info["task"]
    if key in _TEXT_KEYS:
        return info.get("input") == "tokens"
    if key in _AUDIO_KEYS:
        return task == "ctc" or spec.get("format") == "audio"
    if key in ("text_column", "label_column"):
        return spec.get("format") in ("csv", "jsonl", "tsv")
    if key == "label_level":
        return spec.get("format") == "trec"
    if key == "seq_len":
        return task in ("lm", "forecast")
    if key in ("horizon", "season"):
        return task == "forecast"
    return spec.get(key) is not None


def _split_text(split: dict) -> str:
    """One split's summary on one line: '243 sequences, x [243, 29, 12], length 7-26 (mean 15.9), 27 a class'."""
    parts = [f"{split['n']:,} sequences"]
    if "x_shape" in split:
        parts.append(f"x {split['x_shape']}")
    length = split.get("length")
    if length:
        parts.append(f"length {length['min']}" if length["min"] == length["max"]
                     else f"length {length['min']}-{length['max']} (mean {length['mean']:.1f})")
    counts = split.get("class_counts")
    if counts:
        values = list(counts.values())
        if len(set(values)) == 1:
            parts.append(f"{values[0]:,} a class")
        else:
            shown = ", ".join(f"{k}: {v}" for k, v in list(counts.items())[:10])
            parts.append(f"classes {shown}{', ...' if len(counts) > 10 else ''}")
    return ", ".join(parts)


def show_rows(info: dict) -> list[tuple[str, str]]:
    """``data show``'s table from :func:`~lstmlite.data.describe_dataset`'s dict: a row per
    field, a row per split, and only the spec keys that apply to this data.

    >>> info = {"name": "x", "task": "forecast", "input": "features", "splits": {"train": {"n": 81,
    ...         "length": {"min": 24, "mean": 24.0, "max": 24}}}, "spec": {"seq_len": 24, "max_vocab": 10000}}
    >>> show_rows(info)
    [('name', 'x'), ('task', 'forecast'), ('input', 'features'), ('train', '81 sequences, length 24'), ('spec.seq_len', '24')]
    """
    rows: list[tuple[str, str]] = []
    for key, value in info.items():
        if key == "splits":
            rows += [(name, _split_text(split)) for name, split in value.items()]
        elif key == "spec":
            rows += [(f"spec.{k}", str(v)) for k, v in value.items() if k != "source" and _spec_key_applies(k, info)]
        elif isinstance(value, dict):  # a forecast's normalisation stats: a row each, numbers cut to 6 digits
            rows += [(f"{key}.{k}", _short(v)) for k, v in value.items()]
        else:
            rows.append((key, str(value)))
    return rows


def _short(value: object) -> str:
    """A value as the table shows it: floats (alone or in a list) to 6 significant digits.

    >>> _short([242.23275862068965]), _short(12), _short(0.5)
    ('[242.233]', '12', '0.5')
    """
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.6g}" for v in value) + "]"
    return str(value)


def _data_options(extra: list[str]) -> dict:
    """``--data.KEY=VALUE`` (or a bare data key) → ``{KEY: VALUE}``, so ``data show``
    loads a file with the options ``train`` would; model/train options are refused."""
    options = {}
    for dotted, value in parse_overrides(extra).items():
        section, key = dotted.split(".", 1)
        if section != "data":
            raise CliError(f"--{dotted}: data show takes data options only (--data.KEY=VALUE)")
        if key == "source":
            raise CliError("--data.source: give the data set as data show's NAME argument")
        options[key] = value
    return options
