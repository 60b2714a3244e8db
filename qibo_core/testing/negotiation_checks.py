"""Version negotiation (3.1), tried at every version the kit speaks, one fresh process each:
the first thing a run does, since what it learns (the versions a backend speaks, its
capabilities in each, how long it takes to start) decides which checks apply and how long a
backend has to answer them.

In a session of each version: the answer names the version asked for, or refuses it listing
the versions spoken; only that version's features are listed; the methods of later versions
are MethodNotFound and those of earlier ones are served; and a request using a feature of a
later version is InvalidParams (as is `options.device` before its version), since a backend
that knows a field never acts on it, nor drops it, in a session that does not have it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..protocol import (
    DEVICES_SINCE,
    FEATURE_VERSIONS,
    METHODS,
    RUNS_SINCE,
    SUPPORTED_VERSIONS,
    ErrorCode,
    Feature,
    Method,
)
from .base_checks import BELL
from .exchange import Exchange, array, expect_error, handshake
from .profile import FIRST_START_SECONDS, Limits, Profile
from .report import CheckFailed, Hung, Outcome, Status

_IDENTITY = [[[1, 0], [0, 0]], [[0, 0], [1, 0]]]
FEATURE_REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    Feature.INITIAL_STATE: ("execute", {"circuit": {"nqubits": 1},
                                        "initialState": array([1, 0], "complex128")}),
    Feature.SAMPLES: ("execute", {"circuit": {"nqubits": 1, "measurements": [{"qubits": [0]}]},
                                  "nshots": 4, "samples": True}),
    Feature.MID_CIRCUIT_MEASUREMENT: ("execute", {"circuit": {"nqubits": 1, "gates": [
        {"name": "M", "qubits": [0], "register": "m"}]}}),
    Feature.DENSITY_MATRIX: ("execute", {"circuit": {"nqubits": 1, "densityMatrix": True}}),
    Feature.CHANNELS: ("execute", {"circuit": {"nqubits": 1, "gates": [
        {"name": "KrausChannel", "qubits": [0], "kraus": [_IDENTITY]}]}}),
}
"""A request that uses each feature that is not a method of its own (those are in METHODS)."""
FIELD_REQUESTS: dict[str, tuple[int, str, dict[str, Any]]] = {
    "read": (RUNS_SINCE, "execute", {"circuit": BELL, "read": True}),
    "keep": (RUNS_SINCE, "execute", {"circuit": BELL, "keep": False}),
    "prepared": (RUNS_SINCE, "execute", {"prepared": 1, "parameters": []}),
}
"""A request that uses each field of a later version (options.device apart), with that
version."""
UNTESTED_METHODS = (Method.INITIALIZE, Method.SHUTDOWN)
"""Methods whose bare call would end or repeat the handshake."""


@dataclass
class Negotiation:
    """What the sessions at every version found."""

    profile: Profile
    limits: Limits
    outcomes: list[Outcome] = field(default_factory=list)
    hung: str = ""
    """Why later checks are not run: the backend did not answer in time."""


def negotiate(argv: list[str], timeout: float | None) -> Negotiation:
    """A session at every version, newest first: what was learned, the limits it sets, and an
    outcome per version. `timeout` (seconds a request has) replaces the scaled limits."""
    profile, refusals = Profile(), {}
    limits = Limits(timeout or FIRST_START_SECONDS)
    outcomes: list[Outcome] = []
    for version in sorted(SUPPORTED_VERSIONS, reverse=True):
        s = Exchange(argv, limits, profile)
        name = f"§3.1 a session at version {version}: that version, its features, its methods"
        try:
            supported = _session(s, version, profile, time.monotonic(), scaled=not timeout)
            if supported is not None:
                refusals[version] = supported
            outcomes.append(Outcome(name, Status.PASS, "" if supported is None else
                                    f"refused; the backend speaks {supported}"))
        except CheckFailed as exc:
            outcomes.append(Outcome(name, Status.FAIL, str(exc), s.exchange))
            if isinstance(exc, Hung):
                s.close(wait=0)
                return Negotiation(Profile(), limits, outcomes, f"the backend hung in {name!r}")
        finally:
            if profile.start_seconds is not None and not timeout:
                limits = Limits.after_start(profile.start_seconds)
            if s.process.poll() is None:
                s.close(wait=limits.reply)
    outcomes.append(_agreeing(profile, refusals))
    return Negotiation(profile, limits, outcomes)


def _session(s: Exchange, version: int, profile: Profile, started: float, *,
             scaled: bool) -> list[int] | None:
    """One session at `version`, checked; the versions the backend lists when it refuses it
    (None when it accepts it, adding its capabilities to `profile`, and its start, from
    `started` to the answer of a first circuit, if none was measured yet: that circuit has the
    time the handshake took to scale its limit, when `scaled`)."""
    newer = [v for v in profile.capabilities if v > version]
    if version < DEVICES_SINCE and any(v >= DEVICES_SINCE for v in newer):
        devices = profile.capabilities[max(newer)].get("devices") or ["CPU"]
        reply = s.call("initialize", {"protocolVersion": version,
                                      "options": {"device": devices[0]}})
        if _refused(reply, version) is not None:
            return _refused(reply, version)
        expect_error(reply, ErrorCode.INVALID_PARAMS, f"§3.1 options.device is a field of "
                     f"version {DEVICES_SINCE}, refused in a session of version {version}")
    reply = s.call("initialize", {"protocolVersion": version})
    supported = _refused(reply, version)
    if supported is not None:
        s.error("state/new", {"nqubits": 1}, ErrorCode.SERVER_NOT_INITIALIZED,
                "§3.1 a backend that refused a version stays uninitialized")
        return supported
    capabilities = handshake(reply, version)
    s.version, s.capabilities = version, capabilities
    profile.capabilities[version] = capabilities
    if profile.start_seconds is None:
        profile.start_seconds = time.monotonic() - started
        if scaled:
            s.limits = Limits.after_start(profile.start_seconds)
        s.state({"circuit": BELL, "nshots": 10, "seed": 1})
        profile.start_seconds = time.monotonic() - started
    later = [f for f in s.features if FEATURE_VERSIONS.get(f, 0) > version]
    if later:
        raise CheckFailed(f"§3.1: a session of version {version} lists {later[0]!r}, a feature "
                          f"of version {FEATURE_VERSIONS[later[0]]}")
    _methods(s, version)
    for name, (since, method, params) in FIELD_REQUESTS.items():
        if since > version and any(v >= since for v in newer):
            s.error(method, params, ErrorCode.INVALID_PARAMS, f"§3.1 {name!r} is a field of "
                    f"version {since}: a session of version {version} refuses it")
    offered_later = {f for v in newer for f in profile.features(v)}
    for feature, (method, params) in FEATURE_REQUESTS.items():
        if FEATURE_VERSIONS[feature] > version and feature in offered_later:
            s.error(method, params, ErrorCode.INVALID_PARAMS,
                    f"§3.1 {feature!r} is a feature of version {FEATURE_VERSIONS[feature]}: a "
                    f"session of version {version} refuses a request using it")
    return None


def _refused(reply: dict[str, Any], version: int) -> list[int] | None:
    """The versions a refusal lists (None when `reply` is no refusal), checked."""
    error = reply.get("error")
    if not isinstance(error, dict) or \
            error.get("code") != ErrorCode.UNSUPPORTED_PROTOCOL_VERSION:
        return None
    expect_error(reply, ErrorCode.UNSUPPORTED_PROTOCOL_VERSION)
    data = error.get("data")
    data = data if isinstance(data, dict) else {}
    supported = data.get("supported")
    if not isinstance(supported, list) or not all(type(v) is int for v in supported) \
            or version in supported or data.get("requested") != version:
        raise CheckFailed(f"§3.1: refusing version {version}, data is {data!r}, not "
                          f"{{'supported': [versions other than {version}], 'requested': "
                          f"{version}}}")
    return supported


def _methods(s: Exchange, version: int) -> None:
    """Methods of later versions are MethodNotFound; the others are served (a bare call gets
    anything but MethodNotFound)."""
    for spec in METHODS.values():
        if not spec.session or spec.name in UNTESTED_METHODS:
            continue
        reply = s.call(spec.name, {})
        missing = isinstance(reply.get("error"), dict) and \
            reply["error"].get("code") == ErrorCode.METHOD_NOT_FOUND
        if spec.since > version and not missing:
            raise CheckFailed(f"§3.1: {spec.name!r} is a method of version {spec.since}; a "
                              f"session of version {version} answers it MethodNotFound, not "
                              f"{reply}")
        offered = spec.feature is None or spec.feature in s.features
        if spec.since <= version and offered and missing:
            raise CheckFailed(f"§3.1: {spec.name!r} is a method of version {spec.since}, "
                              f"not found in a session of version {version}")


def _agreeing(profile: Profile, refusals: dict[int, list[int]]) -> Outcome:
    """The versions a backend refuses list exactly the versions it accepts (of those the kit
    speaks), and it accepts one."""
    name = "§3.1 the versions refused list the versions accepted"
    accepted = sorted(profile.capabilities)
    if not accepted:
        return Outcome(name, Status.FAIL, f"the backend accepts none of the versions "
                       f"{list(SUPPORTED_VERSIONS)} this kit speaks")
    for version, supported in refusals.items():
        listed = sorted(set(supported) & set(SUPPORTED_VERSIONS))
        if listed != accepted:
            return Outcome(name, Status.FAIL, f"refusing version {version} it lists {supported}"
                           f", but it accepted {accepted}")
    return Outcome(name, Status.PASS, f"the backend speaks {accepted}")
