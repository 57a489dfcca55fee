"""Load and check a protocol profile: the event protocol written down as data.

The checking code never names an event type; everything it knows about
agent-stream/1 (or any other protocol) comes from a profile. A broken profile
would make every verdict meaningless, so a profile is checked against a
meta-schema and for consistency before anything uses it, and rejected with a
message that names the bad key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import Draft202012Validator

PROFILE_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "agent-stream/1"


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and the bad key."""


_STR_LIST = {"type": "array", "items": {"type": "string"}}
# A parameter value: a string, or {repeat: s, times: n} for long values (a typo such
# as `time:` would otherwise silently build a one-character value).
_REPEAT = {
    "type": "object",
    "required": ["repeat", "times"],
    "additionalProperties": False,
    "properties": {"repeat": {"type": "string"}, "times": {"type": "integer", "minimum": 0}},
}
_PARAMS = {"type": "object", "additionalProperties": {"anyOf": [{"type": "string"}, _REPEAT]}}
_CASE = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "omit": {"type": "string"}, "params": _PARAMS},
}

# The shape of a profile. additionalProperties: false catches misspelt keys.
META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["profile", "type_field", "events", "order"],
    "additionalProperties": False,
    "properties": {
        "profile": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "type_field": {"type": "string", "minLength": 1},
        "seq_field": {"type": ["string", "null"]},
        "timestamp_field": {"type": ["string", "null"]},
        "volatile": _STR_LIST,
        "envelope": {"type": "object"},
        "events": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "object"}},
        "order": {
            "type": "object",
            "required": ["first", "last"],
            "additionalProperties": False,
            "properties": {
                "first": {"type": "string"},
                "last": {"type": "string"},
                "exactly_once": _STR_LIST,
                "exactly_one_of": {"type": "array", "items": {**_STR_LIST, "minItems": 1}},
                "terminal": _STR_LIST,
                "interrupts": _STR_LIST,
            },
        },
        "aggregates": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["chunk", "field", "full", "pointer", "scope"],
                "additionalProperties": False,
                "properties": {
                    "chunk": {"type": "string"},
                    "field": {"type": "string"},
                    "full": {"type": "string"},
                    "pointer": {"type": "string", "pattern": "^/"},
                    "scope": {"enum": ["run", "stream"]},
                    "optional": {"type": "boolean"},
                },
            },
        },
        "chunk_types": _STR_LIST,
        "request": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "params": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "required": {"type": "boolean"},
                            "strip": {"type": "boolean"},
                            "min_length": {"type": "integer", "minimum": 0},
                            "max_length": {"type": "integer", "minimum": 1},
                            "default": {"type": "string"},
                            "must_accept": _STR_LIST,
                        },
                    },
                },
                "question_param": {"type": "string", "minLength": 1},
                "sample_questions": {**_STR_LIST, "minItems": 1},
                "invalid": {"type": "array", "items": _CASE},
                "valid_edge": {"type": "array", "items": _CASE},
            },
        },
        "transports": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "sse": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "path": {"type": "string", "pattern": "^/"},
                        "status": {"type": "integer"},
                        "content_type": {"type": "string"},
                        "cache_control_any": _STR_LIST,
                        "should_headers": {"type": "object", "additionalProperties": {"type": "string"}},
                        "allowed_event_names": _STR_LIST,
                        "id_equals": {"type": ["string", "null"]},
                        "reconnect_status": {"type": "integer"},
                        "reject_status": {"type": "string", "pattern": "^[1-5]xx$"},
                        "reject_content_type": {"type": "string"},
                        "buffering_min_spread_s": {"type": "number", "minimum": 0},
                    },
                },
                "ws": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "path": {"type": "string", "pattern": "^/"},
                        "close_normal": {"type": "integer"},
                        "close_reject": {"type": "integer"},
                        "reject_event_type": {"type": "string"},
                        "forbidden_close": {"type": "array", "items": {"type": "integer"}},
                        "cancel": {
                            "type": "object",
                            "required": ["message", "expect"],
                            "additionalProperties": False,
                            "properties": {"message": {"type": "object"}, "expect": {"type": "object"}},
                        },
                    },
                },
            },
        },
        "disconnect": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"gauge": {"type": "string"}, "within_s": {"type": "number", "exclusiveMinimum": 0}},
        },
    },
}


@dataclass(frozen=True)
class Aggregate:
    """Chunks of type ``chunk`` (text in ``field``) that must add up to the value at
    ``pointer`` in the next ``full`` event (scope ``run``) or in the stream's
    ``full`` event (scope ``stream``)."""

    chunk: str
    field: str
    full: str
    pointer: str
    scope: str
    optional: bool = False


@dataclass(frozen=True)
class Profile:
    """A checked profile. ``raw`` is the document as loaded; the attributes are the
    parts the checks read."""

    name: str
    path: Path | None
    raw: dict[str, Any] = field(repr=False)

    # -- vocabulary and envelope --
    @property
    def type_field(self) -> str:
        return self.raw["type_field"]

    @property
    def seq_field(self) -> str | None:
        return self.raw.get("seq_field")

    @property
    def timestamp_field(self) -> str | None:
        return self.raw.get("timestamp_field")

    @property
    def volatile(self) -> tuple[str, ...]:
        return tuple(self.raw.get("volatile", ()))

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self.raw["events"])

    @property
    def order(self) -> dict[str, Any]:
        return self.raw["order"]

    @property
    def aggregates(self) -> tuple[Aggregate, ...]:
        return tuple(Aggregate(**a) for a in self.raw.get("aggregates", ()))

    @property
    def chunk_types(self) -> frozenset[str]:
        return frozenset(self.raw.get("chunk_types", ()))

    @property
    def request(self) -> dict[str, Any]:
        return self.raw.get("request", {})

    @property
    def question_param(self) -> str:
        """The request parameter that carries the question (default ``question``)."""
        return self.request.get("question_param", "question")

    @property
    def sample_questions(self) -> list[str]:
        return list(self.request.get("sample_questions", ["hello"]))

    def transport(self, name: str) -> dict[str, Any]:
        return self.raw.get("transports", {}).get(name, {})

    @property
    def disconnect(self) -> dict[str, Any]:
        return self.raw.get("disconnect", {})

    @cached_property
    def envelope_validator(self) -> Draft202012Validator | None:
        env = self.raw.get("envelope")
        return Draft202012Validator(env) if env else None

    @cached_property
    def validators(self) -> dict[str, Draft202012Validator]:
        """A compiled Draft 2020-12 validator per event type."""
        return {name: Draft202012Validator(schema) for name, schema in self.raw["events"].items()}

    def params_for(self, case: dict[str, Any], base: dict[str, str] | None = None) -> dict[str, str]:
        """Concrete request parameters for an ``invalid``/``valid_edge`` case:
        ``{"repeat": s, "times": n}`` values are expanded, ``omit`` removes a key."""
        params = dict(base or {})
        for key, value in case.get("params", {}).items():
            params[key] = expand_value(value)
        if "omit" in case:
            params.pop(case["omit"], None)
        return params


def expand_value(value: Any) -> str:
    """A parameter value from a profile: a string, or ``{repeat, times}``."""
    if isinstance(value, dict):
        return str(value.get("repeat", "")) * int(value.get("times", 1))
    return str(value)


def _where(error: jsonschema.ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(top level)"


def check_profile(raw: Any, source: str = "<profile>") -> list[str]:
    """Every problem with a profile document, as 'source: key: what is wrong'.

    Pure function: the loader raises on the first list that is not empty, and the
    tests call it directly.
    """
    if not isinstance(raw, dict):
        return [f"{source}: a profile must be a mapping, got {type(raw).__name__}"]
    problems = []
    for err in sorted(Draft202012Validator(META_SCHEMA).iter_errors(raw), key=lambda e: list(e.absolute_path)):
        if err.validator == "additionalProperties":
            # name the unknown key itself, not just its parent
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            where = _where(err)
            for key in extra:
                key_path = key if where == "(top level)" else f"{where}.{key}"
                problems.append(f"{source}: {key_path}: unknown key")
            continue
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else err.message
            where = _where(err)
            key_path = missing if where == "(top level)" else f"{where}.{missing}"
            problems.append(f"{source}: {key_path}: required key is missing")
            continue
        problems.append(f"{source}: {_where(err)}: {err.message}")
    if problems:
        return problems

    types = set(raw["events"])
    for name, schema in raw["events"].items():
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            problems.append(f"{source}: events.{name}: not a valid JSON Schema (Draft 2020-12): {exc.message}")
    if "envelope" in raw:
        try:
            Draft202012Validator.check_schema(raw["envelope"])
        except jsonschema.SchemaError as exc:
            problems.append(f"{source}: envelope: not a valid JSON Schema (Draft 2020-12): {exc.message}")

    def known(key: str, value: str) -> None:
        if value not in types:
            problems.append(f"{source}: {key}: '{value}' is not an event type of this profile")

    order = raw["order"]
    known("order.first", order["first"])
    known("order.last", order["last"])
    for key in ("exactly_once", "terminal", "interrupts"):
        for i, value in enumerate(order.get(key, [])):
            known(f"order.{key}[{i}]", value)
    for i, group in enumerate(order.get("exactly_one_of", [])):
        for j, value in enumerate(group):
            known(f"order.exactly_one_of[{i}][{j}]", value)
    for i, agg in enumerate(raw.get("aggregates", [])):
        known(f"aggregates[{i}].chunk", agg["chunk"])
        known(f"aggregates[{i}].full", agg["full"])
    for i, value in enumerate(raw.get("chunk_types", [])):
        known(f"chunk_types[{i}]", value)
    ws = raw.get("transports", {}).get("ws", {})
    if "reject_event_type" in ws:
        known("transports.ws.reject_event_type", ws["reject_event_type"])
    if "cancel" in ws and raw["type_field"] in ws["cancel"]["expect"]:
        expected = ws["cancel"]["expect"][raw["type_field"]]
        if isinstance(expected, str):
            known("transports.ws.cancel.expect", expected)
        else:
            problems.append(f"{source}: transports.ws.cancel.expect.{raw['type_field']}: must be a string, got {type(expected).__name__}")
    return problems


def bundled_profiles() -> dict[str, Path]:
    """Profile name -> file, for every profile shipped in conformance/profiles."""
    found = {}
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("profile"), str):
            found[doc["profile"]] = path
    return found


def load_profile(name_or_path: str | Path = DEFAULT_PROFILE) -> Profile:
    """A bundled profile by name (``agent-stream/1``) or a profile file by path.

    Raises ProfileError with a message naming the bad key when the profile is
    broken, the file unreadable, or the name unknown.
    """
    text_name = str(name_or_path)
    bundled = bundled_profiles()
    if text_name in bundled:
        path = bundled[text_name]
    else:
        path = Path(text_name)
        if not path.is_file():
            known = ", ".join(sorted(bundled)) or "none"
            raise ProfileError(f"no profile named {text_name!r} and no such file (bundled profiles: {known})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    problems = check_profile(raw, str(path))
    if problems:
        raise ProfileError("invalid profile:\n  " + "\n  ".join(problems))
    return Profile(name=raw["profile"], path=path, raw=raw)
