"""Task metrics: accuracy and macro-F1; perplexity and bits per char; MAE/RMSE.

Every function takes NumPy arrays and returns plain floats, so results go straight
into ``metrics.json``.

Example:
    >>> import numpy as np
    >>> accuracy(np.array([0, 1, 1]), np.array([0, 1, 0]))
    0.6666666666666666
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["accuracy", "macro_f1", "perplexity", "bits_per_token", "mae", "rmse", "cer", "wer", "bleu", "chrf",
           "exact_match", "PRIMARY_METRIC", "HIGHER_IS_BETTER", "higher_is_better", "primary_metric"]


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of exact matches; y_true, y_pred: (N,) class indices."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float(np.mean(y_true == y_pred))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int | None = None) -> float:
    """Unweighted mean over classes of F1 = 2PR / (P + R).

    Classes absent from both ``y_true`` and ``y_pred`` are left out (as
    scikit-learn does with its default labels); a class that is predicted but never
    true (or the reverse) counts with F1 = 0.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.union1d(y_true, y_pred) if n_classes is None else np.arange(n_classes)
    scores = []
    for c in classes:
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def perplexity(mean_nll_nats: float) -> float:
    """exp(mean negative log-likelihood per token, in nats)."""
    return float(math.exp(min(mean_nll_nats, 700.0)))


def bits_per_token(mean_nll_nats: float) -> float:
    """Mean negative log-likelihood in bits (bits per char for a char-level model)."""
    return float(mean_nll_nats / math.log(2.0))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error over every element, e.g. ``mae([1, 2], [2, 2]) == 0.5``."""
    return float(np.mean(np.abs(np.asarray(y_true) - np.asarray(y_pred))))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error over every element, e.g. ``rmse([0, 0], [3, 4]) == 12.5 ** 0.5``."""
    return float(np.sqrt(np.mean(np.square(np.asarray(y_true) - np.asarray(y_pred)))))


def _jiwer():
    try:
        import jiwer
    except ImportError:  # an optional extra: say which
        raise ImportError("CER/WER need jiwer: pip install 'lstmlite[speech]'") from None
    return jiwer


def cer(references: list[str], hypotheses: list[str]) -> float:
    """Character error rate over a corpus (jiwer): character edits / reference characters.

    Example:
        >>> cer(["1 2 3"], ["1 2 4"])
        0.2
    """
    if not references:
        raise ValueError("CER of an empty set is undefined")
    return float(_jiwer().cer(list(references), list(hypotheses)))


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Word error rate over a corpus (jiwer): word edits / reference words. An empty
    hypothesis is allowed (all deletions); an empty reference is not (jiwer refuses it).

    Example:
        >>> wer(["1 2 3"], ["1 2"])
        0.3333333333333333
    """
    if not references:
        raise ValueError("WER of an empty set is undefined")
    return float(_jiwer().wer(list(references), list(hypotheses)))


def _sacrebleu():
    try:
        import sacrebleu
    except ImportError:  # an optional extra: say which
        raise ImportError("BLEU/chrF need sacrebleu: pip install 'lstmlite[seq2seq]'") from None
    return sacrebleu


def bleu(references: list[str], hypotheses: list[str], tokenize: str = "char") -> float:
    """Corpus BLEU (sacrebleu), as a fraction in [0, 1] (sacrebleu reports 0-100).

    ``tokenize``: sacrebleu's tokenizer; ``char`` (the default) scores character
    n-grams, right for short normalization targets such as ``2024-03-05``; ``13a`` is
    sacrebleu's standard word tokenization for translation.

    Example:
        >>> round(bleu(["2024-03-05"], ["2024-03-05"]), 6)
        1.0
    """
    if not references:
        raise ValueError("BLEU of an empty set is undefined")
    sb = _sacrebleu()
    return float(sb.corpus_bleu(list(hypotheses), [list(references)], tokenize=tokenize).score / 100.0)


def chrf(references: list[str], hypotheses: list[str]) -> float:
    """Corpus chrF (sacrebleu, character n-gram F-score, β = 2), as a fraction in [0, 1].

    Example:
        >>> chrf(["abc"], ["abc"])
        1.0
    """
    if not references:
        raise ValueError("chrF of an empty set is undefined")
    return float(_sacrebleu().corpus_chrf(list(hypotheses), [list(references)]).score / 100.0)


def exact_match(references: list[str], hypotheses: list[str]) -> float:
    """Fraction of hypotheses equal to their reference, character for character."""
    if not references:
        raise ValueError("exact match of an empty set is undefined")
    return float(np.mean([r == h for r, h in zip(references, hypotheses)]))


#: The metric a run is selected and reported on, per task (and LM level).
PRIMARY_METRIC = {"classify": "accuracy", "lm": "perplexity", "lm-char": "bits_per_char", "forecast": "mae",
                  "tag": "accuracy", "ctc": "cer", "seq2seq": "exact_match"}


def primary_metric(task: str, level: str = "word") -> str:
    """The metric a run of ``task`` is selected and reported on (a language model's by its
    token ``level``), e.g. ``primary_metric("lm", "char") == "bits_per_char"``."""
    return PRIMARY_METRIC["lm-char" if task == "lm" and level == "char" else task]


#: Metrics where larger is better; the others (perplexity, bits, errors) are losses.
HIGHER_IS_BETTER = frozenset({"accuracy", "macro_f1", "sequence_accuracy", "exact_match", "bleu", "chrf"})


def higher_is_better(metric_name: str) -> bool:
    return metric_name in HIGHER_IS_BETTER
