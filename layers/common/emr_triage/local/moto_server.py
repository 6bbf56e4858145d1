"""moto in server mode for the deploy rehearsal (:mod:`emr_triage.local.deploy_local`): starting it, what its
CloudFormation does not create, and where its answers differ from CloudFormation's (worked around here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emr_triage.exceptions import EmrTriageError


class DeployRehearsalError(EmrTriageError):
    """The rehearsal could not package, translate or create the stack (the message says which and why)."""


def start_server(port: int = 0) -> tuple[Any, str]:
    """Start moto in server mode on 127.0.0.1 (``port`` 0: a free one), in a thread of this process.

    Returns
    -------
    tuple
        The ``ThreadedMotoServer`` (``stop()`` it) and its endpoint URL.

    Raises
    ------
    DeployRehearsalError
        moto's server mode is not installed (it needs flask and flask-cors).
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise DeployRehearsalError(
            f"moto's server mode needs flask and flask-cors: pip install 'emr-triage[local]' ({exc})"
        ) from exc
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    skipped_resources_out_of_describe()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    return server, f"http://{host}:{bound}"


def skipped_resources_out_of_describe() -> None:
    """moto keeps each resource it skipped (a type it does not model, a false Condition) as ``None`` in the
    stack: DescribeStackResources lists it without a logical id and DescribeStackResource fails on it with
    an internal error (500), where CloudFormation knows only the resources it created. Both answer as
    CloudFormation does here (the server runs in this process); the skipped ones are reported apart."""
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.models import CloudFormationBackend

    if getattr(CloudFormationBackend.describe_stack_resources, "_emr_triage", False):
        return
    original: Any = CloudFormationBackend.describe_stack_resources

    def describe_stack_resources(self: Any, stack_name: str, logical_resource_id: str | None) -> Any:
        stack, resources = original(self, stack_name, None)
        created = [r for r in resources if r is not None]
        return stack, [r for r in created if logical_resource_id in (None, r.logical_resource_id)]

    def describe_stack_resource(self: Any, stack_name: str, logical_resource_id: str) -> Any:
        stack, resources = describe_stack_resources(self, stack_name, logical_resource_id)
        if not resources:
            raise ValidationError(stack_name, f"Resource {logical_resource_id} does not exist for stack {stack_name}")
        return stack, resources[0]

    describe_stack_resources._emr_triage = True  # type: ignore[attr-defined]
    setattr(CloudFormationBackend, "describe_stack_resources", describe_stack_resources)  # noqa: B010
    setattr(CloudFormationBackend, "describe_stack_resource", describe_stack_resource)  # noqa: B010


def unsupported_resources(translated: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, str]:
    """The resources these parameters deploy that moto's CloudFormation does not create, and why.

    Compared with moto's model map (its ``get_model_map()`` and ``NULL_MODELS``): a type it has no model
    for is skipped by moto with only a log line ("No Moto CloudFormation support for <type>").
    """
    from moto.cloudformation.parsing import NULL_MODELS, get_model_map

    from emr_triage.local.template import render

    models = get_model_map()
    reasons: dict[str, str] = {}
    for logical_id, resource in render(translated, parameters)["Resources"].items():
        kind = str(resource.get("Type"))
        if kind in NULL_MODELS:
            reasons[logical_id] = f"{kind}: moto's CloudFormation ignores this type (NULL_MODELS)"
        elif kind not in models and not kind.startswith("Custom::"):
            reasons[logical_id] = f"{kind}: no Moto CloudFormation support for this type (skipped, not created)"
    return reasons


class _SkippedTypeFilter:
    """Drops moto's "No Moto CloudFormation support for <type>" lines: the rehearsal lists those resources
    itself, by name and with the reason, once (moto logs each type every time it parses the template)."""

    def filter(self, record: Any) -> bool:
        return not str(record.msg).startswith("No Moto CloudFormation support")


def quiet_skipped_types() -> None:
    import logging
    import warnings

    moto_logger = logging.getLogger("moto")
    if not any(isinstance(f, _SkippedTypeFilter) for f in moto_logger.filters):
        moto_logger.addFilter(_SkippedTypeFilter())
    warnings.filterwarnings("ignore", message="Tried to parse .* not supported by moto")
