"""geo-eval: per-mu efficiency (亩均论英雄) evaluation of industrial land.

The core is pure: functions take and return (Geo)DataFrames and frozen config objects; reading and
writing files happens in :mod:`geo_eval.io`. From a notebook, :func:`evaluate_frames` evaluates one
year given as frames and returns a :class:`Result` (its tables, and ``Result.write(out_dir)``).
"""

__version__ = "0.1.0"

from geo_eval.errors import (
    DatasetError,
    FatalInputError,
    GeoEvalError,
    InputFileError,
    OutputExistsError,
    SchemeError,
)
from geo_eval.inputs.uscc import is_valid_uscc, uscc_check_char
from geo_eval.inputs.validate import Inputs
from geo_eval.landuse.evidence import Raster
from geo_eval.landuse.land import M2_PER_MU, evaluated_land, land_allocation, lease_land, parcel_areas
from geo_eval.pipeline import Result, evaluate_frames, evaluate_inputs
from geo_eval.rating.evaluate import Evaluation, evaluate
from geo_eval.rating.indicators import INDICATORS, compute_indicators, indicator
from geo_eval.rating.scheme import Scheme, load_scheme, parse_scheme, preset_names

__all__ = [
    "INDICATORS",
    "M2_PER_MU",
    "DatasetError",
    "Evaluation",
    "FatalInputError",
    "GeoEvalError",
    "InputFileError",
    "Inputs",
    "OutputExistsError",
    "Raster",
    "Result",
    "Scheme",
    "SchemeError",
    "__version__",
    "compute_indicators",
    "evaluate",
    "evaluate_frames",
    "evaluate_inputs",
    "evaluated_land",
    "indicator",
    "is_valid_uscc",
    "land_allocation",
    "lease_land",
    "load_scheme",
    "parcel_areas",
    "parse_scheme",
    "preset_names",
    "uscc_check_char",
]
