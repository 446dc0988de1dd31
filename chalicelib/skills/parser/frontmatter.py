"""The SKILL.md frontmatter: split from the body, then loaded with a hardened YAML loader.

Anchors and aliases are refused (no "billion laughs"); nesting depth, node count and frontmatter size
are capped (:class:`ParseLimits`). Every key path keeps its line, so problems can name it.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
from typing import Any

import yaml

from chalicelib.skills.parser.common import ParseLimits, one_line, type_name


def split_frontmatter(text: str, label: str, problems: list[str]) -> tuple[str, int, str, int] | None:
    """(frontmatter text, its first line number, body, body's first line number)."""
    lines = text.split("\n")
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start == len(lines) or lines[start].rstrip() != "---":
        problems.append(
            f"{label} has no YAML frontmatter: it must start with a line '---', then name and "
            f"description, then a closing '---'"
        )
        return None
    for end in range(start + 1, len(lines)):
        if lines[end].rstrip() in ("---", "..."):
            frontmatter = "\n".join(lines[start + 1 : end])
            body = "\n".join(lines[end + 1 :])
            return frontmatter, start + 2, body, end + 2
    problems.append(f"{label} line {start + 1}: the frontmatter is never closed (no '---' line after it)")
    return None



class _YamlRefused(yaml.MarkedYAMLError):
    pass


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader without anchors/aliases, with bounded depth and node count."""

    def __init__(self, stream: str, *, max_depth: int, max_nodes: int) -> None:
        super().__init__(stream)
        self._max_depth = max_depth
        self._max_nodes = max_nodes
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _YamlRefused(problem="YAML aliases (*name) are not allowed", problem_mark=event.start_mark)
        if getattr(event, "anchor", None):
            raise _YamlRefused(problem="YAML anchors (&name) are not allowed", problem_mark=event.start_mark)
        self._nodes += 1
        if self._nodes > self._max_nodes:
            raise _YamlRefused(
                problem=f"the frontmatter has more than {self._max_nodes} YAML nodes", problem_mark=event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                raise _YamlRefused(
                    problem=f"the frontmatter nests deeper than {self._max_depth} levels", problem_mark=event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_frontmatter(
    text: str, first_line: int, label: str, limits: ParseLimits, problems: list[str]
) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]] | None:
    size = len(text.encode("utf-8"))
    if size > limits.max_frontmatter_bytes:
        problems.append(
            f"{label}: the frontmatter is {size} bytes, over the limit of {limits.max_frontmatter_bytes} bytes"
        )
        return None
    loader: _GuardedLoader | None = None
    try:
        # the constructor already reads the stream and may refuse characters
        loader = _GuardedLoader(text, max_depth=limits.max_yaml_depth, max_nodes=limits.max_yaml_nodes)
        node = loader.get_single_node()
        value = loader.construct_document(node) if node is not None else None
    except yaml.reader.ReaderError as exc:
        line = first_line + text.count("\n", 0, max(exc.position, 0))
        problems.append(
            f"{label} line {line}: invalid YAML in the frontmatter: character U+{exc.character:04X} is not allowed"
            if isinstance(exc.character, int)
            else f"{label} line {line}: invalid YAML in the frontmatter: {exc.reason}"
        )
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = " ".join(part for part in (exc.context, exc.problem) if part) or one_line(exc)
        place = f"{label} line {first_line + mark.line}" if mark is not None else label
        problems.append(f"{place}: invalid YAML in the frontmatter: {reason}")
        return None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        # ValueError: e.g. an integer with more digits than Python converts
        problems.append(f"{label}: invalid YAML in the frontmatter: {one_line(exc)}")
        return None
    finally:
        if loader is not None:
            loader.dispose()
    if value is None:
        problems.append(f"{label}: the frontmatter is empty; it needs at least name and description")
        return None
    if not isinstance(value, dict):
        problems.append(
            f"{label} line {first_line}: the frontmatter must be a mapping of keys to values, got {type_name(value)}"
        )
        return None
    lines = _node_lines(node, first_line, label, problems)
    return json_safe(value), lines


def _node_lines(root: yaml.Node, first_line: int, label: str, problems: list[str]) -> dict[tuple[Any, ...], int]:
    """Line of every key path, and a problem for every duplicate key."""
    lines: dict[tuple[Any, ...], int] = {}
    stack: list[tuple[tuple[Any, ...], yaml.Node]] = [((), root)]
    while stack:
        path, node = stack.pop()
        lines[path] = first_line + node.start_mark.line
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = key_node.value
                if key in seen:
                    dotted = ".".join(str(part) for part in (*path, key))
                    problems.append(f"{label} line {first_line + key_node.start_mark.line}: duplicate key '{dotted}'")
                seen.add(key)
                stack.append(((*path, key), value_node))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                stack.append(((*path, index), item))
    return lines


def json_safe(value: Any) -> Any:
    """YAML values as JSON types (dates as ISO text, keys as strings)."""
    if isinstance(value, dict):
        return {key if isinstance(key, str) else _key_text(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_key_text(item) for item in value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _key_text(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, (datetime.date, datetime.datetime)):
        return key.isoformat()
    return str(key)


def json_object(text: str, max_depth: int = 32) -> dict[str, Any] | None:
    """A JSON object string as a dict (None when it is not one, or nests absurdly deep)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or _depth(value) > max_depth:
        return None
    return json_safe(value)


def _depth(value: Any) -> int:
    depth = 0
    level = [value]
    while level:
        depth += 1
        following: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                following.extend(item.values())
            elif isinstance(item, list):
                following.extend(item)
        level = following
    return depth

