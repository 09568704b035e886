"""lstmlite.data: built-in data sets, users' files, vocabulary and splits.

One call turns a built-in name or a file into train/val/test arrays::

    >>> from lstmlite.data import load_data
    >>> data = load_data("japanese_vowels")
    >>> data.train.x.shape[1:], data.input_size, data.n_classes
    ((29, 12), 12, 9)

Sources: the built-ins (``japanese_vowels``, ``basic_motions``, ``digits``, ``airline``;
see :func:`list_datasets`) and users' files: CSV / JSONL (text classification), TREC
``.label``, plain ``.txt`` (language modelling), UCR/UEA ``.ts`` and ``.npz``
(sequence classification), ``.npy`` (forecasting). See :class:`DataSpec` for options
and :mod:`lstmlite.data.containers` for the array shapes.
"""

from .classify import encode_texts, normalize_features
from .containers import Split, TaskData
from .describe import describe_dataset, list_datasets
from .errors import DataError, DataFileNotFoundError
from .load import as_spec, load_data
from .spec import FORMATS, TASKS, DataSpec
from .tokenizer import char_tokens, tokenize, word_tokens
from .vocab import PAD, PAD_ID, UNK, UNK_ID, Vocabulary

__all__ = [
    "load_data", "as_spec", "list_datasets", "describe_dataset",
    "DataSpec", "TaskData", "Split", "Vocabulary", "DataError", "DataFileNotFoundError",
    "TASKS", "FORMATS", "PAD", "UNK", "PAD_ID", "UNK_ID",
    "tokenize", "word_tokens", "char_tokens", "encode_texts", "normalize_features",
]
