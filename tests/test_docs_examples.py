"""Every Python example in docs/api.md runs unchanged, as a user would copy it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs" / "api.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)

# Text that each example prints (on stdout, or on stderr for the log), so that an
# example that runs but does nothing fails.
EXPECTED = [
    ("stdout", "sandbox-03: "),
    ("stdout", "healthy: True explore: v25.3.0"),
    ("stdout", "TLS failed for untrusted because"),
    ("stdout", "{'sandbox-01': True, 'sandbox-02': True}"),
    ("stdout", "stopped after 0.5 s; 0 of 5 connections finished"),
    ("stderr", "sandbox-01 acmemc.config: OAUTH_CLIENT_SECRET set by config\n"),
]


def test_every_example_has_an_expectation() -> None:
    assert len(EXAMPLES) == len(EXPECTED)


@pytest.mark.parametrize(
    ("example", "expected"), list(zip(EXAMPLES, EXPECTED)), ids=[f"example-{n}" for n in range(1, len(EXAMPLES) + 1)]
)
def test_example_runs(example: str, expected: tuple[str, str], tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example, encoding="utf-8")

    completed = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    stream, text = expected
    assert text in getattr(completed, stream)
    assert "Unclosed" not in completed.stderr
