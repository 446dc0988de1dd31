"""Which Python, if any, is the skill's code: examples in the body are documentation, not code.

A skill has code (``python_code``) only when it says so:

1. ``entrypoint`` (top-level, or ``metadata.entrypoint`` for spec-strict skills) names a bundled script
   (``scripts/run.py``), a function (``run``) or both (``scripts/run.py:run``). A function alone is
   looked for in the body's python blocks, then in the bundled ``.py`` files.
2. Without ``entrypoint``: the first python block, else the bundled ``.py`` file, that defines
   ``execute`` at its top level.
3. Still nothing, the skill's only Python is one body block (or, with no block, one bundled ``.py``),
   and it is a module of definitions only (imports, functions, classes, constants; nothing runs at
   import, no ``__main__`` guard) with exactly one public function taking an argument: that function.
   This is the ambiguous case, and the choice says so.

Everything else is documentation. The skill is then a ``script`` skill when it bundles scripts (files
it runs as commands) and ``prompt_only`` when it does not. The seed form (a top-level ``packages:``
list) keeps its own rule: its first python block is the code, as the seed documents define it.

Every parse records a :class:`CodeChoice` (``ParsedSkill.code_choice``): which kind, what was chosen
and why, so an admin can see why a ```python block did or did not become the code.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from chalicelib.skills.parser.bundle import unsafe_path_reason
from chalicelib.skills.parser.common import decode_utf8, one_line, type_name
from chalicelib.skills.parser.imports import is_test_file

DEFAULT_ENTRYPOINT = "execute"
_PYTHON_FENCE_INFO = frozenset({"python", "py", "python3"})
_FENCE_OPEN = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
#: files a skill runs as commands, by extension (extensionless files count when they start with "#!")
SCRIPT_SUFFIXES = (".py", ".sh", ".bash", ".zsh", ".js", ".mjs", ".cjs", ".ts", ".rb", ".pl", ".ps1", ".lobster")
#: Agent Skills' folders for material the agent reads or copies, not runs
_NOT_SCRIPT_FOLDERS = ("references/", "assets/", "templates/")


@dataclass
class CodeChoice:
    """The parser's decision about code, as kept on the skill record."""

    kind: str  # "function", "script" or "prompt"
    reason: str
    chosen: str | None = None  # "SKILL.md python block 2 (line 40)" or a bundled path
    ambiguous: bool = False
    documentation_blocks: int = 0  # python blocks in the body read as examples
    code: str | None = None
    code_path: str | None = None
    entrypoint: str | None = None
    scripts: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, "chosen": self.chosen, "reason": self.reason, "ambiguous": self.ambiguous,
                "documentation_blocks": self.documentation_blocks}  # fmt: skip


@dataclass
class _Candidate:
    code: str
    label: str  # how problems name it
    chosen: str  # how the choice names it
    first_line: int  # of the code in its file
    path: str | None  # bundled path; None for a body block
    tree: ast.Module | None = None
    parsed: bool = False
    error: str | None = None  # why it does not parse
    reported: bool = False


def choose_code(
    frontmatter: dict[str, Any],
    metadata: dict[str, Any],
    body: str,
    body_line: int,
    bundle: dict[str, bytes] | None,
    label: str,
    where: Any,
    problems: list[str],
    *,
    file_prefix: str = "",
    seed_form: bool = False,
) -> CodeChoice:
    scripts = bundled_scripts(bundle)
    declared = _declared_entrypoint(frontmatter, metadata, where, problems)
    blocks = [
        _Candidate(code, label, f"{label} python block {number} (line {body_line + offset})", body_line + offset, None)
        for number, (code, offset) in enumerate(python_blocks(body), start=1)
    ]
    modules = []
    for path in sorted(p for p in (bundle or {}) if p.endswith(".py")):
        text = decode_utf8(bundle[path], file_prefix + path, [])  # type: ignore[index]
        if text is not None:  # undecodable files are reported only when declared as the code
            modules.append(_Candidate(text, file_prefix + path, path, 1, path))
    # Bundled scripts are run, so they must be valid Python; a body block only when it means to be the
    # code (it spells out the entrypoint's definition): examples may be fragments.
    for module in modules:
        if module.path in scripts:
            _tree(module, problems)
    meant = declared.function if declared is not None and declared.function else DEFAULT_ENTRYPOINT
    defines = re.compile(rf"^(async\s+)?def\s+{re.escape(meant)}\s*\(", re.MULTILINE)
    for block in blocks:
        if defines.search(block.code):
            _tree(block, problems)
    if declared is not None:
        return _declared_choice(declared, blocks, modules, bundle, scripts, where, problems, file_prefix)
    if seed_form and blocks:
        return _seed_choice(blocks, scripts, problems)

    runnable = [module for module in modules if module.path in scripts]  # not references/, assets/, templates/
    for group in (blocks, runnable):
        for candidate in group:
            if DEFAULT_ENTRYPOINT in _functions(candidate, problems=None):
                other = [c.chosen for c in blocks + runnable if c is not candidate and DEFAULT_ENTRYPOINT in _functions(c)]
                why = f"it defines '{DEFAULT_ENTRYPOINT}'"
                if other:
                    why += f"; so does {', '.join(other)}, which was not chosen (the body comes first, then files in order)"
                return _function(candidate, DEFAULT_ENTRYPOINT, why, blocks, scripts, ambiguous=bool(other))

    # The only public function of a definitions-only module, when that module is the skill's only Python
    # (one block in the body, or no block and one bundled .py): likely meant as the code, but not said.
    # With several blocks, a lone function is far more often one example among others.
    pool = blocks if len(blocks) == 1 else (runnable if not blocks and len(runnable) == 1 else [])
    for candidate in pool:
        function = _sole_function(candidate)
        if function is not None:
            why = (f"no 'entrypoint' and no '{DEFAULT_ENTRYPOINT}'; it is a module of definitions only whose one public "
                   f"function, {function}, takes an argument; set 'entrypoint' to make this explicit")  # fmt: skip
            return _function(candidate, function, why, blocks, scripts, ambiguous=True)

    examples = len(blocks)
    said = f"{examples} python block(s) in the body are documentation" if examples else "no python block in the body"
    unnamed = f"; no block or bundled .py defines '{DEFAULT_ENTRYPOINT}' and no 'entrypoint' is declared"
    if scripts:
        return CodeChoice("script", f"{said}{unnamed}; it bundles {len(scripts)} script(s) to run as commands",
                          documentation_blocks=examples, scripts=scripts)  # fmt: skip
    return CodeChoice("prompt", f"{said}{unnamed if examples else ''}; no bundled scripts: the body is the skill",
                      documentation_blocks=examples)  # fmt: skip


def bundled_scripts(bundle: dict[str, bytes] | None) -> list[str]:
    """Bundled files the skill runs as commands: by extension, or an extensionless file with a shebang. Its own
    tests and package markers (``__init__.py``) are not scripts: a skill bundling only those runs nothing."""
    found = []
    for path in sorted(bundle or {}):
        if path == "SKILL.md" or path.startswith(_NOT_SCRIPT_FOLDERS) or is_test_file(path) or path.endswith("__init__.py"):
            continue
        name = path.rsplit("/", 1)[-1]
        if name.endswith(SCRIPT_SUFFIXES) or ("." not in name and bundle[path][:2] == b"#!"):  # type: ignore[index]
            found.append(path)
    return found


def python_blocks(body: str) -> list[tuple[str, int]]:
    """Every fenced python block: (code, index of its first code line within the body)."""
    found = []
    lines = body.split("\n")
    index = 0
    while index < len(lines):
        opening = _FENCE_OPEN.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence, info = len(opening.group(1)), opening.group(2), opening.group(3).strip()
        if fence[0] == "`" and "`" in info:
            index += 1  # not a fence: backtick fences cannot have backticks in their info string
            continue
        language = info.split()[0].lower().strip("{}.") if info else ""
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if language in _PYTHON_FENCE_INFO:
            content = [_dedent(line, indent) for line in lines[index + 1 : end]]
            found.append(("\n".join(content) + "\n", index + 1))
        index = end + 1
    return found


# --- the declared entrypoint ---------------------------------------------------------------


@dataclass
class _Declared:
    spot: str
    script: str | None
    function: str | None


def _declared_entrypoint(frontmatter: dict[str, Any], metadata: dict[str, Any], where: Any,
                         problems: list[str]) -> _Declared | None:  # fmt: skip
    declared = frontmatter.get("entrypoint")
    spot = where("entrypoint")
    from_metadata = metadata.get("entrypoint")
    if declared is not None and not isinstance(declared, str):
        problems.append(f"{spot}: entrypoint must be a string, got {type_name(declared)}")
        declared = None
    if from_metadata is not None and not isinstance(from_metadata, str):
        problems.append(
            f"{where('metadata', 'entrypoint')}: metadata.entrypoint must be a string, got {type_name(from_metadata)}"
        )
        from_metadata = None
    if declared and from_metadata and declared.strip() != from_metadata.strip():
        problems.append(f"{spot}: entrypoint {declared!r} and metadata.entrypoint {from_metadata!r} disagree")
    if declared is None and from_metadata is not None:
        declared, spot = from_metadata, where("metadata", "entrypoint")
    if declared is None:
        return None
    text = declared.strip()
    script: str | None = None
    function: str | None = None
    if ":" in text:
        script, function = (part.strip() for part in text.rsplit(":", 1))
    elif text.endswith(".py"):
        script = text
    else:
        function = text
    if script is not None:
        script = script[2:] if script.startswith("./") else script
        if unsafe_path_reason(script) or not script.endswith(".py"):
            problems.append(f"{spot}: entrypoint script {script!r} must be a relative path to a .py file in the skill")
            script = None
    if function is not None and (not function.isidentifier() or keyword.iskeyword(function)):
        problems.append(f"{spot}: entrypoint {function!r} is not a valid Python function name")
        function = None
    return _Declared(spot, script, function)


def _declared_choice(declared: _Declared, blocks: list[_Candidate], modules: list[_Candidate],
                     bundle: dict[str, bytes] | None, scripts: list[str], where: Any, problems: list[str],
                     file_prefix: str) -> CodeChoice:  # fmt: skip
    said = f"'entrypoint' names {'' if declared.script is None else declared.script}" + (
        f"{':' if declared.script else ''}{declared.function}" if declared.function else ""
    )
    if declared.script is None and declared.function is None:
        return CodeChoice("prompt", "the declared entrypoint is invalid", scripts=scripts)
    if declared.script is not None:
        if bundle is None or declared.script not in bundle:
            problems.append(f"{declared.spot}: entrypoint names {declared.script!r}, which is not in the upload")
            return CodeChoice("prompt", f"{said}, which is missing", scripts=scripts)
        candidate = next((m for m in modules if m.path == declared.script), None)
        if candidate is None:  # not UTF-8: say so
            decode_utf8(bundle[declared.script], file_prefix + declared.script, problems)
            return CodeChoice("prompt", f"{said}, which is not UTF-8 text", scripts=scripts)
        function = _entrypoint(candidate, declared.function, problems)
        return _function(candidate, function, said, blocks, scripts)
    function = declared.function
    for candidate in blocks + modules:
        if function in _functions(candidate):
            return _function(candidate, function, f"{said}, which it defines", blocks, scripts)
    fallback = blocks[:1] or (modules if len(modules) == 1 else [])
    if fallback:  # report it against the code the skill most likely meant
        _entrypoint(fallback[0], function, problems)
        return CodeChoice("prompt", f"{said}, which no python block or bundled .py defines", scripts=scripts)
    problems.append(
        f"{declared.spot}: entrypoint {function!r} is set but the skill has no Python code "
        f"(no ```python block, and no bundled .py script)"
    )
    return CodeChoice("prompt", f"{said}, but the skill has no Python code", scripts=scripts)


def _seed_choice(blocks: list[_Candidate], scripts: list[str], problems: list[str]) -> CodeChoice:
    candidate = blocks[0]
    function = _entrypoint(candidate, None, problems)
    return _function(candidate, function, "seed form (top-level 'packages'): the first python block is the code",
                     blocks, scripts)  # fmt: skip


def _function(candidate: _Candidate, function: str | None, why: str, blocks: list[_Candidate], scripts: list[str],
              *, ambiguous: bool = False) -> CodeChoice:  # fmt: skip
    examples = sum(1 for block in blocks if block is not candidate)
    return CodeChoice("function", why, chosen=candidate.chosen, ambiguous=ambiguous, documentation_blocks=examples,
                      code=candidate.code, code_path=candidate.path, entrypoint=function, scripts=scripts)  # fmt: skip


# --- reading the candidates ---------------------------------------------------------------


def _tree(candidate: _Candidate, problems: list[str] | None) -> ast.Module | None:
    """The candidate's syntax tree; why it does not parse goes to ``problems`` (once) when given."""
    if not candidate.parsed:
        candidate.parsed = True
        try:
            candidate.tree = ast.parse(candidate.code)
        except SyntaxError as exc:
            line = candidate.first_line + (exc.lineno or 1) - 1
            candidate.error = f"{candidate.label} line {line}: Python syntax error: {exc.msg}"
        except (RecursionError, MemoryError):
            candidate.error = f"{candidate.label}: the Python code is nested too deeply to be parsed"
        except ValueError as exc:  # e.g. NUL characters in the source
            candidate.error = f"{candidate.label}: the Python code cannot be parsed: {one_line(exc)}"
    if candidate.error and problems is not None and not candidate.reported:
        candidate.reported = True
        problems.append(candidate.error)
    return candidate.tree


def _functions(candidate: _Candidate, problems: list[str] | None = None) -> list[str]:
    tree = _tree(candidate, problems)
    if tree is None:
        return []
    found = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return list(dict.fromkeys(found))


def _entrypoint(candidate: _Candidate, function: str | None, problems: list[str]) -> str | None:
    """The function to call in code the skill declared (or the seed form made) its code."""
    if _tree(candidate, problems) is None:
        return None
    functions = _functions(candidate)
    if function is not None:
        if function not in functions:
            problems.append(
                f"{candidate.label}: entrypoint function {function!r} is not defined at the top level of the code "
                f"(functions found: {', '.join(functions) or 'none'})"
            )
            return None
        return function
    if DEFAULT_ENTRYPOINT in functions:
        return DEFAULT_ENTRYPOINT
    public = [name for name in functions if not name.startswith("_")]
    if len(public) == 1:
        return public[0]
    problems.append(
        f"{candidate.label}: the code defines no function '{DEFAULT_ENTRYPOINT}' and {len(public)} public functions "
        f"({', '.join(public) or 'none'}); name the one to call with 'entrypoint:' in the frontmatter"
    )
    return None


_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _sole_function(candidate: _Candidate) -> str | None:
    """The one public function of a definitions-only module that takes an argument, else None."""
    tree = _tree(candidate, problems=None)
    if tree is None:
        return None
    for statement in tree.body:
        if isinstance(statement, _DEFINITIONS) or _is_docstring(statement) or _is_constant(statement):
            continue
        return None  # something runs at import (an example's calls, a __main__ guard): a program, not a function
    public = [
        node for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_")
    ]  # fmt: skip
    if len({node.name for node in public}) != 1:
        return None
    arguments = public[0].args
    if not (arguments.posonlyargs or arguments.args or arguments.vararg):
        return None  # main() with no argument reads argv: a command, not a function of the input
    return public[0].name


def _is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)


def _is_constant(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.Assign):
        value = statement.value
    elif isinstance(statement, ast.AnnAssign):
        value = statement.value
    else:
        return False
    if value is None:
        return True
    try:
        ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _dedent(line: str, indent: int) -> str:
    removable = len(line) - len(line.lstrip(" "))
    return line[min(indent, removable) :]
