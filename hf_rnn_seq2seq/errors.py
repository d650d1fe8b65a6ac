"""The package's error for input data it cannot use.

A module of its own so that raising it costs no imports: `data.py` needs `datasets`, which loads pyarrow
and pandas (tens of MB and a second of start-up: bench/DESIGN.md), and the tokenizers and translation code
raise DataError without needing any of that.
"""


class DataError(ValueError):
    """Training or evaluation data that cannot be used as given; the message says what to fix, and where."""
