"""Errors and warnings raised by geo-eval.

One root class, :class:`GeoEvalError`; its leaves also inherit a built-in so that callers who do not
know geo-eval can still catch them (``except ValueError``). Messages are in Chinese: they reach
bureau users through the CLI and the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


class GeoEvalError(Exception):
    """Root of every error geo-eval raises on purpose."""


class DatasetError(GeoEvalError, ValueError):
    """The input data cannot be evaluated (missing file, column, CRS, fatal row problems)."""

    def __init__(self, message: str, problems: list[object] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class FatalInputError(DatasetError):
    """The inputs have fatal problems and were not evaluated; ``frame`` is the whole problem report
    (every problem found, fatal or not, in the columns of ``exceptions.csv``)."""

    def __init__(self, problems: pd.DataFrame) -> None:
        from geo_eval.inputs.problems import FATAL

        n = int((problems["severity"] == FATAL).sum())
        super().__init__(f"数据有 {n} 个致命问题，评价未进行", [problems])
        self.frame = problems


class SchemeError(GeoEvalError, ValueError):
    """An evaluation scheme is malformed; the message lists every problem."""


class OutputExistsError(GeoEvalError, FileExistsError):
    """The output directory exists and ``overwrite`` was not requested."""


class InputFileError(GeoEvalError, OSError):
    """An input file is missing or cannot be read."""


class GeoEvalWarning(UserWarning):
    """Root of geo-eval's warnings."""


class FallbackWarning(GeoEvalWarning):
    """A scheme setting could not be honoured as written and a documented fallback was used."""
