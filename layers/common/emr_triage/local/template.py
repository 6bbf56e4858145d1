"""Read template.yaml the way the local runner needs it: which function each event reaches (the
EventBridge rules' patterns) and with which environment (Globals merged with the function's own).

Only the intrinsic functions these parts of the template use are resolved (Ref, Fn::Sub, Fn::GetAtt,
Fn::Join, Fn::Select); anything else raises :class:`TemplateError` naming it, so the replay never runs
a handler with a half-resolved environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from emr_triage.exceptions import TemplateError

_SHORT_TAGS = {
    "!Ref": "Ref",
    "!Condition": "Condition",
    **{
        f"!{name}": f"Fn::{name}"
        for name in (
            "Sub",
            "GetAtt",
            "Join",
            "Select",
            "Split",
            "If",
            "Not",
            "Equals",
            "And",
            "Or",
            "FindInMap",
            "Base64",
            "Cidr",
            "ImportValue",
            "GetAZs",
            "Transform",
            "ToJsonString",
            "Length",
        )
    },
}


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that understands CloudFormation's short-form tags (!Ref, !Sub, ...)."""


def _construct(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    tag = node.tag
    name = _SHORT_TAGS.get(tag)
    if name is None:
        raise TemplateError(f"unknown YAML tag {tag} at line {node.start_mark.line + 1}")
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template (YAML or JSON)."""
    try:
        data = yaml.load(path.read_text("utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    except OSError as exc:
        raise TemplateError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or "Resources" not in data:
        raise TemplateError(f"{path} has no Resources: not a CloudFormation template")
    return data


class _NoValue:
    """What ``Ref: AWS::NoValue`` renders to: the property or list item is left out."""


_NO_VALUE = _NoValue()


def render(template: Mapping[str, Any], parameters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The template as CloudFormation deploys it with these parameter values (the others at their defaults):
    its conditions evaluated, each ``Fn::If`` replaced by the branch taken, ``AWS::NoValue`` left out.

    Other intrinsic functions stay as they are, so the result can be read like the template itself.

    Raises
    ------
    TemplateError
        A condition uses something other than parameters, ``Fn::Equals``, ``Fn::Not``, ``Fn::And``,
        ``Fn::Or``, ``Fn::Join`` and ``Condition``, or names a condition or parameter the template does not define.
    """
    values = {**parameter_defaults(template), **(parameters or {})}
    definitions = template.get("Conditions", {})
    evaluated: dict[str, bool] = {}

    def condition(name: str) -> bool:
        if name not in evaluated:
            if name not in definitions:
                raise TemplateError(f"condition {name} is not defined in Conditions")
            evaluated[name] = bool(evaluate(definitions[name]))
        return evaluated[name]

    def evaluate(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        ((key, value),) = node.items()
        if key == "Ref":
            if value not in values:
                raise TemplateError(f"condition refers to {value}, which has no value (a parameter without default?)")
            return values[value]
        if key == "Condition":
            return condition(str(value))
        if key == "Fn::Equals":
            left, right = (str(evaluate(v)) for v in value)
            return left == right
        if key == "Fn::Not":
            return not evaluate(value[0])
        if key == "Fn::And":
            return all(evaluate(v) for v in value)
        if key == "Fn::Or":
            return any(evaluate(v) for v in value)
        if key == "Fn::Join":  # of a CommaDelimitedList parameter: its items
            separator, items = value
            listed = evaluate(items)
            return str(separator).join(str(i) for i in (listed.split(",") if isinstance(listed, str) else listed))
        raise TemplateError(f"cannot evaluate {key} in a condition")

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (walk(i) for i in node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref" and value == "AWS::NoValue":
                return _NO_VALUE
            if key == "Fn::If":
                name, when_true, when_false = value
                return walk(when_true if condition(str(name)) else when_false)
        return {k: v for k, v in ((k, walk(v)) for k, v in node.items()) if v is not _NO_VALUE}

    rendered = walk({k: v for k, v in template.items() if k != "Conditions"})
    # A resource with a Condition that is false is not created.
    rendered["Resources"] = {
        name: resource
        for name, resource in rendered["Resources"].items()
        if "Condition" not in resource or condition(str(resource["Condition"]))
    }
    return cast(dict[str, Any], rendered)


_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


@dataclass
class Resolver:
    """Resolves intrinsic functions against parameter values and the stack's physical resources.

    ``refs`` maps logical ids to what ``Ref`` returns (table name, queue URL, function name ...);
    ``attributes`` maps ``"LogicalId.Attr"`` to what ``Fn::GetAtt`` returns.
    """

    parameters: Mapping[str, str]
    refs: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[str, str] = field(default_factory=dict)
    pseudo: Mapping[str, str] = field(default_factory=dict)

    def ref(self, name: str) -> str:
        for table in (self.parameters, self.pseudo, self.refs):
            if name in table:
                return str(table[name])
        raise TemplateError(f"cannot resolve Ref {name}: not a parameter or a resource the local runner knows")

    def get_att(self, name: str) -> str:
        if name in self.attributes:
            return str(self.attributes[name])
        raise TemplateError(f"cannot resolve Fn::GetAtt {name} locally")

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self.ref(str(value))
            if key == "Fn::GetAtt":
                parts = value if isinstance(value, list) else str(value).split(".", 1)
                return self.get_att(".".join(str(p) for p in parts))
            if key == "Fn::Sub":
                return self._sub(value)
            if key == "Fn::Join":
                separator, items = value
                listed = self.resolve(items)
                if isinstance(listed, str):  # a CommaDelimitedList parameter
                    listed = listed.split(",")
                return str(separator).join(str(self.resolve(i)) for i in listed)
            if key == "Fn::Split":
                separator, text = value
                return str(self.resolve(text)).split(str(separator))
            if key == "Fn::Select":
                index, items = value
                return self.resolve(items)[int(self.resolve(index))]
            if key.startswith("Fn::") or key == "Condition":
                raise TemplateError(f"the local runner cannot resolve {key} here")
        return {key: self.resolve(value) for key, value in node.items()}

    def _sub(self, value: Any) -> str:
        if isinstance(value, list):
            text, variables = value[0], {k: self.resolve(v) for k, v in value[1].items()}
        else:
            text, variables = value, {}

        def replace(match: re.Match[str]) -> str:
            name = match[1]
            if name in variables:
                return str(variables[name])
            if "." in name:
                return self.get_att(name)
            return self.ref(name)

        return _SUB_VARIABLE.sub(replace, str(text))


@dataclass(frozen=True)
class RuleSpec:
    name: str
    pattern: dict[str, Any]


@dataclass(frozen=True)
class FunctionSpec:
    """A function of the template as the local runner runs it."""

    logical_id: str
    handler_file: Path
    handler_name: str
    environment: dict[str, str]
    rules: tuple[RuleSpec, ...]
    timeout_seconds: int
    memory_mb: int
    # Logical ids of the SQS queues the function consumes (its SQS event sources).
    queues: tuple[str, ...] = ()


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: str(spec["Default"])
        for name, spec in template.get("Parameters", {}).items()
        if isinstance(spec, dict) and "Default" in spec
    }


def function_specs(template: Mapping[str, Any], root: Path, resolver: Resolver) -> list[FunctionSpec]:
    """Every AWS::Serverless::Function the parameters create (the template's conditions evaluated with
    them, each ``Fn::If`` taken), with its resolved environment and EventBridge rules."""
    template = render(template, {**parameter_defaults(template), **resolver.parameters})
    globals_ = template.get("Globals", {}).get("Function", {})
    global_env = globals_.get("Environment", {}).get("Variables", {})
    specs = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        handler = str(props.get("Handler", ""))
        module, _, function = handler.rpartition(".")
        code_uri = props.get("CodeUri")
        if not module or not isinstance(code_uri, str):
            raise TemplateError(f"{logical_id}: needs a local CodeUri and a Handler like module.function")
        rules = []
        queues = []
        for event_name, event in props.get("Events", {}).items():
            queue = event.get("Properties", {}).get("Queue")
            if event.get("Type") == "SQS" and isinstance(queue, dict) and "Fn::GetAtt" in queue:
                queues.append(str(queue["Fn::GetAtt"][0]))
            if event.get("Type") in ("Schedule", "ScheduleV2"):
                # A schedule's rule sends EventBridge's "Scheduled Event" (the replay delivers saved ones).
                schedule = {"source": ["aws.events"], "detail-type": ["Scheduled Event"]}
                rules.append(RuleSpec(name=f"{logical_id}{event_name}", pattern=schedule))
                continue
            if event.get("Type") not in ("EventBridgeRule", "CloudWatchEvent"):
                continue
            pattern = resolver.resolve(event.get("Properties", {}).get("Pattern", {}))
            rules.append(RuleSpec(name=f"{logical_id}{event_name}", pattern=pattern))
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                handler_file=(root / code_uri / f"{module.replace('.', '/')}.py").resolve(),
                handler_name=function,
                environment={k: _layer_path(str(resolver.resolve(v)), template, root) for k, v in env.items()},
                rules=tuple(rules),
                timeout_seconds=int(props.get("Timeout", globals_.get("Timeout", 3))),
                memory_mb=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
                queues=tuple(queues),
            )
        )
    return specs


def _layer_path(value: str, template: Mapping[str, Any], root: Path) -> str:
    """A path under ``/opt/`` (where Lambda mounts layers) as the local folder of the plain-content layer
    that provides it, so the local runner reads the same files the deployed functions would."""
    if not value.startswith("/opt/"):
        return value
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::LayerVersion" or resource.get("Metadata", {}).get("BuildMethod"):
            continue
        content = resource.get("Properties", {}).get("ContentUri")
        if isinstance(content, str) and (root / content / value[len("/opt/") :]).exists():
            return str((root / content / value[len("/opt/") :]).resolve())
    return value


def matching_rules(specs: list[FunctionSpec], event: Mapping[str, Any]) -> list[tuple[FunctionSpec, RuleSpec]]:
    """The (function, rule) pairs whose EventBridge pattern matches the event, as EventBridge would."""
    from moto.events.models import EventPattern

    matches = []
    for spec in specs:
        for rule in spec.rules:
            if EventPattern.load(json.dumps(rule.pattern)).matches_event(cast(Any, dict(event))):
                matches.append((spec, rule))
    return matches
