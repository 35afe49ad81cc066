"""In the child processes of a `--store-backend=postgresql` test run: stores redirected as in the test
process (see tests/store_backends.py), so a child opens the same database for the same workspace.

Loaded by Python at start-up from PYTHONPATH, which the test run sets (only for that run: it imports
contexta into every child, the capture log's writer child included, which is slower but the same)."""

from __future__ import annotations

import os
import sys

if os.environ.get("TEST_STORE_BACKEND") == "postgresql":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from store_backend_redirect import install

    install(os.environ["TEST_STORE_ADMIN_URL"])
