"""The README's quick start runs as written.

The code is read from the README's "## Quick start" section (its first
```python block), so the test follows the README when it changes.
"""

import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _quick_start_code():
    if not README.is_file():
        pytest.skip(f"{README} is not here (the tests run outside the repository)")
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Quick start\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Quick start' section"
    block = re.search(r"^```python\n(.*?)^```", section.group(1), re.S | re.M)
    assert block, "the README's Quick start section has no ```python block"
    return block.group(1)


def test_readme_quick_start_runs(capsys):
    code = _quick_start_code()
    namespace = {}
    with warnings.catch_warnings():
        # max_iter=30 stops before convergence: MLP's ConvergenceWarning.
        warnings.simplefilter("ignore")
        exec(compile(code, str(README), "exec"), namespace)
    clf = namespace["clf"]
    assert clf.lsh_layers_ == [True, False]
    # It prints the test accuracy and the multiplication share.
    accuracy, share = (float(v) for v in capsys.readouterr().out.split())
    assert accuracy == clf.score(namespace["X_test"], namespace["y_test"])
    assert accuracy > 0.9
    assert 0 < share < 0.25
