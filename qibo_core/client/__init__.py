"""The client: the API (Handle, State, Result), its transports to a backend in this process or in
a spawned one, discovery, shared memory, tracing and batches.

Loaded on first use by `qibo_core`: a backend process, which imports the package for its server,
starts faster without subprocess, threads and shared-memory machinery.
"""

from .aio import AsyncHandle, AsyncResult, AsyncState, aconnect
from .api import close_shared, connect, execute, resolve
from .batch import execute_many
from .discovery import BackendExecutable, list_backends
from .handle import Handle
from .result import Result
from .state import State

__all__ = ["AsyncHandle", "AsyncResult", "AsyncState", "BackendExecutable", "Handle", "Result",
           "State", "aconnect", "close_shared", "connect", "execute", "execute_many",
           "list_backends", "resolve"]
