"""Every shell command in README.md and docs/**/*.md runs, exits 0 and writes what it says.

How a block is run, its quick variant and its other directives: tests/docs/doc_blocks.py
and docs/README.md ("How the docs are tested"). One test per document runs its blocks in
order in one temporary folder; ``-m slow`` runs the blocks marked ``slow`` too. Blocks that
cannot run here carry ``<!-- test: skip REASON -->`` and must be listed in ``SKIPPED``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_blocks import ROOT, Block, CommandFailed, Shell, documents, make_shim, parse  # noqa: E402

#: Every block that is not run, by id's document and first command, with why. The test
#: below fails when a document marks a block ``skip`` that is not here (or the reverse).
SKIPPED: dict[tuple[str, str], str] = {
    ("README.md", "make demo"): "installs",
    ("docs/speech.md", 'pip install -e ".[speech]"'): "installs",
    ("docs/seq2seq.md", 'pip install -e ".[seq2seq]"'): "installs",
    ("docs/tutorials/text-classification.md", "mkdir -p data/trec"): "network",
}

#: Inputs a block does not make itself (``<!-- test: needs … -->``): the commands that make a
#: small stand-in, run in the document's folder. Each may need others (made first).
FIXTURES: dict[str, tuple[list[str], list[str]]] = {
    "runs/jv": ([], ["lstmlite train --data japanese_vowels --train.epochs=2 --quiet --out runs/jv"]),
    "runs/jv-int8": (["runs/jv"], ["lstmlite compress runs/jv --recipe int8 --quiet --out runs/jv-int8"]),
    "runs/jv-small": (["runs/jv"], ["lstmlite compress runs/jv --recipe shrink --max-epochs 1 --quiet "
                                    "--out runs/jv-small"]),
    "runs/jv-int4": (["runs/jv"], [
        "printf 'steps:\\n  - method: int4_weight\\n' > int4.yaml",
        "lstmlite compress runs/jv --recipe int4.yaml --quiet --out runs/jv-int4"]),
    "runs/jv-pruned": (["runs/jv"], [
        "printf 'steps:\\n  - method: magnitude_prune\\n    sparsity: 0.8\\n    block: [1, 4]\\n' > prune.yaml",
        "lstmlite compress runs/jv --recipe prune.yaml --quiet --out runs/jv-pruned"]),
    # a stopped run: checkpoints only (config.json is written last); it stands for a run cut
    # short, though its one (quick) epoch is done, so --resume has only the last steps left
    "runs/jv-cut": ([], ["lstmlite train --data japanese_vowels --train.epochs=1 --quiet --out runs/jv-cut",
                         "cd runs/jv-cut && find . -mindepth 1 -maxdepth 1 ! -name checkpoints -exec rm -r {} +"]),
    "my-recipe.yaml": ([], ["printf 'steps:\\n  - method: int8_weight\\n' > my-recipe.yaml"]),
    "my.yaml": ([], ["printf 'model: {hidden_size: 16}\\ntrain: {batch_size: 32}\\n' > my.yaml"]),
    "pos.tsv": ([], ["python -c \"import random; r = random.Random(0); "
                     "tags = {'the': 'DET', 'a': 'DET', 'dog': 'NOUN', 'cat': 'NOUN', 'runs': 'VERB', 'sees': 'VERB'}; "
                     "print('\\n\\n'.join('\\n'.join(w + '\\t' + tags[w] for w in r.choices(list(tags), k=5)) "
                     "for _ in range(120)))\" > pos.tsv"]),
    "sentiment.keras": ([], ["KERAS_BACKEND=torch python -c \"import keras; L = keras.layers; "
                             "m = keras.Sequential([keras.Input((None,), dtype='int32'), L.Embedding(100, 8), "
                             "L.LSTM(12), L.Dense(2, activation='softmax')]); m.save('sentiment.keras')\""]),
    "tagger.pt": ([], ["python -c \"import torch; "
                       "m = torch.nn.ModuleDict({'embed': torch.nn.Embedding(50, 8), "
                       "'lstm': torch.nn.LSTM(8, 10, batch_first=True), 'out': torch.nn.Linear(10, 3)}); "
                       "torch.save(m.state_dict(), 'tagger.pt')\""]),
    "bench.json": ([], ["lstmlite bench --hidden-size 16 --seq-len 10 --reps 3 --warmup 1 "
                        "--engines lstmlite-fp32,torch-fp32 --json bench.json"]),
    # a TFLite-quantized LSTM (int8, fused UNIDIRECTIONAL_SEQUENCE_LSTM), as the importer tests make it
    "lstm_int8.tflite": ([], ["python -c \"import numpy as np, tensorflow as tf, tf_keras; "
                              "tf_keras.utils.set_random_seed(0); "
                              "m = tf_keras.Sequential([tf_keras.layers.InputLayer(input_shape=(6, 4), batch_size=1), "
                              "tf_keras.layers.LSTM(5, return_sequences=True)]); "
                              "c = tf.lite.TFLiteConverter.from_keras_model(m); "
                              "c.optimizations = [tf.lite.Optimize.DEFAULT]; "
                              "r = np.random.default_rng(0); "
                              "c.representative_dataset = lambda: ([r.normal(size=(1, 6, 4)).astype(np.float32)] "
                              "for _ in range(40)); "
                              "c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]; "
                              "c.inference_input_type = c.inference_output_type = tf.int8; "
                              "open('lstm_int8.tflite', 'wb').write(c.convert())\""]),
    # a float32 TFLite LSTM classifier (fused UNIDIRECTIONAL_SEQUENCE_LSTM), as the float importer tests make it
    "lstm_float.tflite": ([], ["python -c \"import tensorflow as tf, tf_keras; L = tf_keras.layers; "
                               "tf_keras.utils.set_random_seed(0); "
                               "m = tf_keras.Sequential([L.InputLayer(input_shape=(6, 4), batch_size=1), L.LSTM(5), "
                               "L.Dense(3, activation='softmax')]); "
                               "open('lstm_float.tflite', 'wb').write(tf.lite.TFLiteConverter.from_keras_model(m)"
                               ".convert())\""]),
    # stand-ins in the formats of the real files (the tutorials say where to get those)
    "data/trec": ([], ["mkdir -p data/trec", "python -c \"import random; r = random.Random(0); "
                       "words = {'DESC': 'how why describe', 'ENTY': 'what animal color', 'ABBR': 'abbreviation stand', "
                       "'HUM': 'who person name', 'LOC': 'where city country', 'NUM': 'when many year'}; "
                       "rows = [c + ':x ' + ' '.join(r.choices(w.split(), k=3) + r.choices(['the', 'is', 'of'], k=3)) "
                       "+ ' ?' for c, w in words.items() for _ in range(40)]; r.shuffle(rows); "
                       "open('data/trec/train_5500.label', 'w').write('\\n'.join(rows[:180]) + '\\n'); "
                       "open('data/trec/TREC_10.label', 'w').write('\\n'.join(rows[180:]) + '\\n')\""]),
    "data/tinyshakespeare/input.txt": ([], [
        "mkdir -p data/tinyshakespeare",
        "python -c \"import random; r = random.Random(0); w = 'to be or not that is the question whether tis '"
        "'nobler in mind suffer'.split(); "
        "open('data/tinyshakespeare/input.txt', 'w').write(' '.join(r.choices(w, k=3000)))\""]),
}


def _make(name: str, shell: Shell, made: set[str]) -> None:
    """Make fixture ``name`` (after the ones it needs) in ``shell``'s folder, once."""
    if name in made:
        return
    deps, commands = FIXTURES[name]
    for dep in deps:
        _make(dep, shell, made)
    fake = Block(ROOT / "tests/docs/test_commands.py", 0, "sh", "")
    for cmd in commands:
        shell.run(cmd, fake)
    made.add(name)


@pytest.fixture(scope="session")
def fixture_cache(tmp_path_factory: pytest.TempPathFactory):
    """One folder per worker in which stand-ins are made once, then copied per document."""
    cache = tmp_path_factory.mktemp("doc-fixtures")
    shim = make_shim(tmp_path_factory.mktemp("bin"))
    shell = Shell(cache, shim)
    made: set[str] = set()

    def provide(name: str, into: Path) -> None:
        if name not in FIXTURES:
            raise KeyError(f"`<!-- test: needs {name} -->` names no entry of FIXTURES in tests/docs/test_commands.py")
        _make(name, shell, made)
        src, dst = cache / name, into / name
        if dst.exists():
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)

    return provide, shim


def _blocks_by_doc() -> dict[Path, list[Block]]:
    return {doc: blocks for doc in documents() if (blocks := parse(doc))}


def _params():
    for doc, blocks in _blocks_by_doc().items():
        rel = str(doc.relative_to(ROOT))
        runnable = [b for b in blocks if b.skip is None]
        if not runnable:
            continue
        yield pytest.param(doc, False, id=rel)
        if any(b.slow for b in runnable):
            yield pytest.param(doc, True, id=rel + "[with slow blocks]", marks=pytest.mark.slow)


@pytest.mark.parametrize("doc, with_slow", list(_params()))
def test_documented_commands_run(doc: Path, with_slow: bool, tmp_path: Path, fixture_cache) -> None:
    provide, shim = fixture_cache
    shell = Shell(tmp_path, shim)
    ran = 0
    for block in parse(doc):
        if block.skip is not None or (block.slow and not with_slow):
            continue
        for name in block.needs:
            provide(name, shell.cwd)
        shell.run_block(block)
        ran += 1
    assert ran, f"{doc.name}: no block ran"
    print("\n".join(line for line in shell.log if line.startswith("$ ")))  # what ran, for -s / -rP


def test_unrun_blocks_are_listed_with_a_reason() -> None:
    """A block the test does not run is a visible, reviewed exception, never a silent one."""
    marked = {}
    for doc, blocks in _blocks_by_doc().items():
        for b in blocks:
            if b.skip is not None:
                first = b.commands()[0].split("#")[0].strip()
                marked[(str(doc.relative_to(ROOT)), first)] = b.skip
    for key, reason in marked.items():
        assert len(reason.split()) >= 3, f"{key}: `<!-- test: skip REASON -->` needs a reason a reader can act on"
    listed = {k for k in SKIPPED}
    assert set(marked) == listed, (f"skipped in the docs but not in SKIPPED: {sorted(set(marked) - listed)}; "
                                   f"in SKIPPED but no longer skipped: {sorted(listed - set(marked))}")
    print("\nshell blocks not run by tests/docs/test_commands.py:")
    for (doc, first), reason in sorted(marked.items()):
        print(f"  {doc}: {first}  -- {reason}")


def test_every_document_with_commands_is_covered() -> None:
    """The parser finds the blocks (a regression here would make the test above vacuous)."""
    by_doc = _blocks_by_doc()
    assert ROOT / "README.md" in by_doc
    assert sum(len(b) for b in by_doc.values()) >= 10
    assert all(b.commands() for blocks in by_doc.values() for b in blocks), "a shell block with no command"


def test_a_failing_command_fails_the_test(tmp_path: Path, fixture_cache) -> None:
    """The runner really checks exit codes and promised outputs (break it and see)."""
    _, shim = fixture_cache
    doc = tmp_path / "x.md"
    doc.write_text("```sh\nlstmlite data show no_such_data_set\n```\n\n```bash\ntrue  # ok\n```\n\n"
                   "<!-- test: writes missing.txt -->\n```sh\ntouch made.txt\n```\n\n```sh\nfalse\n```\n")
    a, b, c, d = parse(doc)
    shell = Shell(tmp_path, shim)
    assert (a.exits, a.commands()) == (0, ["lstmlite data show no_such_data_set"])
    with pytest.raises(CommandFailed, match="exited 2"):  # an input error
        shell.run_block(a)
    shell.run_block(b)
    with pytest.raises(CommandFailed, match="missing.txt"):
        shell.run_block(c)
    with pytest.raises(CommandFailed, match="exited 1"):
        shell.run_block(d)


def test_directives_are_read(tmp_path: Path, fixture_cache) -> None:
    """quick appends to the named sub-command only; exits accepts a documented error."""
    _, shim = fixture_cache
    doc = tmp_path / "x.md"
    doc.write_text("<!-- test: quick data.show --json -->\n<!-- test: exits 2 -->\n"
                   "```console\n$ lstmlite data show no_such_data_set\nlstmlite data: error: ...\n```\n\n"
                   "<!-- test: skip network: shown only -->\n<!-- test: slow -->\n```sh\ncurl -O x \\\n  y\n```\n")
    err, skipped = parse(doc)
    assert err.exits == 2 and err.quick == [("data.show", ["--json"])]
    Shell(tmp_path, shim).run_block(err)  # exits 2 (an input error) as the page says: passes
    assert skipped.skip == "network: shown only" and skipped.slow and skipped.commands() == ["curl -O x  y"]


def test_promised_outputs_are_read_from_the_command() -> None:
    """--out of any command and bench's --json FILE are checked; train's --json flag is not a path."""
    from doc_blocks import _outputs

    assert _outputs(["train", "--data", "x", "--json", "--out", "runs/a"]) == ["runs/a"]
    assert _outputs(["bench", "--json", "b.json", "--chart=c.png"]) == ["b.json", "c.png"]
    assert _outputs(["export", "r", "--out=deploy/m.onnx"]) == ["deploy/m.onnx"]
