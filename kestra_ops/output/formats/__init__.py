"""One module per output format (see :mod:`kestra_ops.output`)."""
