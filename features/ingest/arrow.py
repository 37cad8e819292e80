"""Text columns handed to Arrow's compute kernels, which test and transform millions of cells
in one call where pandas' string methods would make several passes or go through Python."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa


def arrow_text(text: pd.Series) -> pa.Array:
    """A text column as one Arrow ``large_string`` array (without a copy when pandas holds it
    in one chunk, as it does after reading)."""
    cells = pa.array(text, type=pa.large_string(), from_pandas=True)
    return cells.combine_chunks() if isinstance(cells, pa.ChunkedArray) else cells
