"""The flags a store's rows may carry: what each says, and which make a row unusable.

Importers set them (rows are flagged, never dropped); calibrations leave out the
rows flagged :data:`UNUSABLE_FLAGS`; the study explains them in its caveats. The
vocabulary belongs to the store's ``flags`` column, so it lives here, beside the
schema.
"""

from __future__ import annotations

__all__ = ["FLAGS", "UNUSABLE_FLAGS"]

FLAGS = {
    "negative_time": "a negative edge, cloud or total time (a clock glitch in the source)",
    "fast_transfer": "communication faster than the bandwidth allows for the output bytes",
    "negative_comm": "total time smaller than edge + cloud compute",
    "edge_spike": "edge time above a later point's by >50% and >10 ms (edge work only grows)",
    "edge_outlier": "edge time off the median of the same point and edge condition by >2x",
    "cloud_outlier": "cloud time off the median of the same point and cloud condition by >2x",
    "input_is_next_cut": "the input layer's line (raw input sent, no edge work) with at least "
    "half the next cut's edge time and transfer, where that cut sends twice the bytes or more: "
    "it measured that cut, not the raw input; calibrations leave it out",
}
# Flags that say a row did not measure what it is labelled: calibrations leave these out.
UNUSABLE_FLAGS = ("input_is_next_cut",)
