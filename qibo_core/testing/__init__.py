"""Testing tools: the conformance kit (`qibo-core check`), its pytest plugin, and the reference
simulator that the kit and qibo-core's own tests check backends against."""

from .conformance import check
from .reference import ReferenceBackend
from .report import Outcome, Report, Status

__all__ = ["Outcome", "ReferenceBackend", "Report", "Status", "check"]
