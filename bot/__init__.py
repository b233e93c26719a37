"""Vietnamese citizen assistant for administrative procedures: grounded answers from real records."""

__version__ = "0.1.0"
