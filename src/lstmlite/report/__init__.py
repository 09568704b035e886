"""lstmlite.report: an HTML report comparing run dirs, and explanations of one sample.

* :func:`write_report` ``(runs, out, bench=(), explain_sample=None)`` → one
  self-contained HTML file (``lstmlite report RUN… --out report.html``);
* :func:`explain` ``(run_dir, sample)`` → :class:`Explanation` (gate heatmaps,
  integrated-gradients saliency), :func:`write_explanation` writes its PNGs and an
  HTML section (``lstmlite explain RUN --sample K --out DIR``).

Example:
    >>> from lstmlite.report import write_report, explain, write_explanation
    >>> write_report(["runs/jv", "runs/jv-int8"], "report.html")      # doctest: +SKIP
    >>> write_explanation(explain("runs/jv-int8", sample=3), "explain/")  # doctest: +SKIP
"""

from .explain import Explanation, explain, explanation_section, write_explanation
from .gates import record_gates
from .saliency import Attribution, integrated_gradients
from .write import load_bench, render_report, write_report

__all__ = ["write_report", "render_report", "load_bench", "explain", "write_explanation", "explanation_section",
           "Explanation", "record_gates", "integrated_gradients", "Attribution"]
