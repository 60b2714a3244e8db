"""These tests need qibo-backend-qulacs installed: without it they are left out, and the run's
header says so."""

import importlib.util

if importlib.util.find_spec("qibo_backend_qulacs") is None:
    collect_ignore_glob = ["test_*.py"]

    def pytest_report_header() -> str:
        return "qibo-backend-qulacs is not installed: backends/qulacs/tests are left out"
