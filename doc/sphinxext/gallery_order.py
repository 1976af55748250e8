"""The reading order of the example gallery (sphinx-gallery sort key).

The quick start first, then from the method's central trade-off to the
practical tasks. A new example goes in EXAMPLE_ORDER; unlisted ones come last,
by name.
"""

EXAMPLE_ORDER = [
    "plot_quick_start.py",
    "plot_active_fraction.py",
    "plot_extreme_classification.py",
    "plot_hash_families.py",
    "plot_text_pipeline.py",
    "plot_regression.py",
    "plot_topk_and_persistence.py",
    "dask_out_of_core.py",
]


class ExampleOrder:
    """Sort key: the position of an example's file name in EXAMPLE_ORDER."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        if filename in EXAMPLE_ORDER:
            return (EXAMPLE_ORDER.index(filename), filename)
        return (len(EXAMPLE_ORDER), filename)

    def __repr__(self):
        return f"<{self.__class__.__name__}: {EXAMPLE_ORDER}>"
