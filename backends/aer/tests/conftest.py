"""These tests need qibo-backend-aer installed: without it they are left out, and the run's
header says so."""

import importlib.util

if importlib.util.find_spec("qibo_backend_aer") is None:
    collect_ignore_glob = ["test_*.py"]

    def pytest_report_header() -> str:
        return "qibo-backend-aer is not installed: backends/aer/tests are left out"
