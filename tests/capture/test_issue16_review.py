"""Adversarial checks of the writer's one-pass take (issue 16): the compiled take and facts, the
builder's copy of metric runs between other items, the capture log's pieces, and the metadata heads."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

compiled = pytest.importorskip("contexta.capture._metric_columns")


def test_pop_left_never_shows_a_half_filled_list_to_code_its_callable_runs() -> None:
    # pop_left fills a preallocated list; a callable that is not deque.popleft runs Python code
    # between the fills, and the garbage collector's view of live objects must not hand it a list
    # with empty slots (reading one crashed the interpreter).
    script = textwrap.dedent(
        """
        import gc
        from contexta.capture._metric_columns import pop_left

        marker = object()
        seen = []

        def popper():
            for candidate in gc.get_objects():
                if type(candidate) is list and len(candidate) == 5 and candidate[:1] == [marker]:
                    seen.append(list(candidate))
            return marker

        taken = pop_left(popper, 5)
        print(len(taken), all(item is marker for item in taken), len(seen))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["5", "True"]
