"""Input and output at the edges: loaders, writers and workbooks."""

from geo_eval.io.corrections import read_corrections
from geo_eval.io.loaders import load_inputs, read_previous
from geo_eval.io.writers import write_outputs

__all__ = ["load_inputs", "read_corrections", "read_previous", "write_outputs"]
