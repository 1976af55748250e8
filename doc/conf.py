"""Sphinx configuration of the sklearn-lsh documentation.

Build from the repository root (the examples are executed):

    python -m pip install -e ".[docs]"
    python -m sphinx -W -b html doc doc/_build/html
"""

import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

import sklearn_lsh

DOC_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(DOC_DIR / "sphinxext"))  # gallery_order

# -- Project -----------------------------------------------------------------

project = "sklearn-lsh"
author = "The sklearn-lsh developers"
copyright = "The sklearn-lsh developers (BSD-3-Clause)"
release = sklearn_lsh.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "matplotlib.sphinxext.plot_directive",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "_intersphinx",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
]
default_role = "literal"
pygments_style = "sphinx"

# -- API pages -----------------------------------------------------------------

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
# The class template lists the methods itself (autodoc), so numpydoc must not
# add a second table of them.
numpydoc_show_class_members = False
# "fit()" rather than "LSHMLPClassifier.fit()" in the page's table of contents.
toc_object_entries_show_parents = "hide"
numpydoc_class_members_toctree = False
# Parameter types stay plain text: with intersphinx unavailable offline (see
# below) linking them would only produce unresolved references.
numpydoc_xref_param_type = False

# -- Markdown (MyST) -----------------------------------------------------------

myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# -- Intersphinx ---------------------------------------------------------------
# Links to scikit-learn, NumPy and SciPy need their objects.inv inventories.
# The build must also work offline (CI and the developers' machines here have
# no network), and with -W an inventory that cannot be fetched is a warning,
# hence an error. So each inventory is used only when it is available:
#
# 1. a cached copy in doc/_intersphinx/<name>-objects.inv (not in git; put one
#    there by hand, or let step 2 write it);
# 2. otherwise, unless SKLEARN_LSH_DOCS_OFFLINE=1, one download attempt with a
#    short timeout, saved to that cache for the next builds.
#
# When neither works the project is left out of intersphinx_mapping and its
# references (``:class:`sklearn.neural_network.MLPClassifier```, ...) render as
# unlinked code text: nothing breaks, the links are just missing. The build
# prints which inventories it used.

INTERSPHINX_PROJECTS = {
    "sklearn": "https://scikit-learn.org/stable/",
    "numpy": "https://numpy.org/doc/stable/",
    "scipy": "https://docs.scipy.org/doc/scipy/",
    "python": "https://docs.python.org/3/",
    "joblib": "https://joblib.readthedocs.io/en/stable/",
}
INTERSPHINX_CACHE = DOC_DIR / "_intersphinx"


def _inventory(name, url):
    """Path of a local copy of ``url``'s objects.inv, or None."""
    cached = INTERSPHINX_CACHE / f"{name}-objects.inv"
    if cached.is_file() and cached.stat().st_size > 0:
        return cached
    if os.environ.get("SKLEARN_LSH_DOCS_OFFLINE") == "1":
        return None
    try:
        with urllib.request.urlopen(url + "objects.inv", timeout=5) as response:
            data = response.read()
    except (OSError, urllib.error.URLError, ValueError):
        return None
    INTERSPHINX_CACHE.mkdir(exist_ok=True)
    cached.write_bytes(data)
    return cached


intersphinx_mapping = {}
for _name, _url in INTERSPHINX_PROJECTS.items():
    _path = _inventory(_name, _url)
    if _path is not None:
        intersphinx_mapping[_name] = (_url, str(_path))


# The estimators' pages list the methods inherited from scikit-learn (score,
# get_params, set_params, set_*_request, ...) with scikit-learn's docstrings,
# which refer to labels and glossary terms of scikit-learn's own documentation
# (:ref:`metadata_routing`, :term:`meta-estimator`). Those resolve through
# intersphinx when scikit-learn's inventory is available; without it they
# would be undefined references, so in the docstrings of objects defined by
# scikit-learn (and only there) they become plain literal text.
_SKLEARN_REF = re.compile(
    r":(?:ref|term):`(?P<text>[^`<]*?)\s*(?:<(?P<target>[^>`]*)>)?`"
)


def _unlink_sklearn_refs(app, what, name, obj, options, lines):
    if "sklearn" in intersphinx_mapping:
        return
    module = getattr(obj, "__module__", None) or ""
    if not module.startswith("sklearn."):
        return
    for i, line in enumerate(lines):
        lines[i] = _SKLEARN_REF.sub(lambda m: f"``{m['text'] or m['target']}``", line)


def setup(app):
    app.connect("autodoc-process-docstring", _unlink_sklearn_refs)


print(
    "intersphinx: "
    + (", ".join(sorted(intersphinx_mapping)) or "no inventory reachable")
    + " (see doc/conf.py)"
)

# -- Example gallery -------------------------------------------------------------


sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Only plot_*.py files are executed; demo.py (the README's demonstration,
    # several minutes long) is left out of the gallery.
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(__init__|demo)\.py",
    # The reading order is set in sphinxext/gallery_order.py.
    "within_subsection_order": "gallery_order.ExampleOrder",
    "doc_module": ("sklearn_lsh",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"sklearn_lsh": None},
    "min_reported_time": 1,
    "reset_modules": ("matplotlib",),
    "remove_config_comments": True,
    "plot_gallery": "True",
    "download_all_examples": False,
}

# -- Plots drawn from tables (performance page) ------------------------------------

plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]

# -- HTML ------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-lsh {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {
    "index": [],
    "getting_started": [],
    "whats_new": [],
    "performance": [],  # wide tables: no left sidebar (a single page anyway)
}
html_show_sourcelink = True
html_copy_source = True
