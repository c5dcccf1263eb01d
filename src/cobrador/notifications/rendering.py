"""Rendering templates that organizations write: sandboxed, bounded in time and size.

Templates are Jinja2 on `ImmutableSandboxedEnvironment` (no underscore attributes, no mutation of
lists and dicts, no `cycler`/`joiner`/`namespace`/`lipsum` globals, no loaders: no include, import
or extends). HTML bodies autoescape; subjects and text bodies do not. The context is plain data
(str, int, float, bool, None, lists and dicts) checked before every render, never model objects.

Limits, per render: MAX_SECONDS of wall time and MAX_OUTPUT_BYTES of output. Time is checked on
every attribute, item, call, filter and operator, and on every jump of the compiled template's own
code (loops included) through `sys.monitoring`, which is switched on for template code objects
only. Size is checked wherever a template can make a big value out of small ones before the value
exists: `*`, `**`, `+`, `%` and `~`, block and macro buffers, every filter (and estimated before
replace, indent, wordwrap, join and format run), every call and every `{{ }}` output. String
methods are limited to ones that cannot grow a string (no ljust/center/zfill/format/...).
"""

import functools
import re
import sys
import threading
import time
from dataclasses import dataclass
from types import CodeType

from jinja2 import ChainableUndefined, TemplateSyntaxError
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_SECONDS = 1.0
MAX_OUTPUT_BYTES = 1_000_000
MAX_VALUE_CHARS = 1_000_000  # the largest string (or stringified value) a template may build
MAX_SOURCE_CHARS = 100_000  # per template part
MAX_RANGE = 10_000
MAX_POWER_BITS = 64 * 1024

SAFE_STR_METHODS = frozenset({
    "lower", "upper", "title", "capitalize", "casefold", "swapcase", "strip", "lstrip", "rstrip", "split",
    "rsplit", "splitlines", "startswith", "endswith", "find", "rfind", "index", "rindex", "count",
    "partition", "rpartition", "removeprefix", "removesuffix", "isdigit", "isalpha", "isalnum", "isspace",
    "islower", "isupper", "istitle", "isnumeric", "isdecimal",
})


class RenderError(Exception):
    """A template failed while rendering (its line in the message when known)."""


class RenderLimitExceeded(RenderError):
    pass


class TemplateCompileError(Exception):
    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


_state = threading.local()


def _check_time() -> None:
    deadline = getattr(_state, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise RenderLimitExceeded(f"rendering took longer than {MAX_SECONDS:g} s")


def _too_big(what: str = "a value") -> RenderLimitExceeded:
    return RenderLimitExceeded(f"{what} would be larger than {MAX_VALUE_CHARS} characters")


def _size(value, budget: int = MAX_VALUE_CHARS) -> int:
    """About len(str(value)), counting nested containers (shared ones each time they appear, as str()
    would); raises as soon as it passes `budget`, so the walk itself stays bounded."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            if total <= budget:
                stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            if total <= budget:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, range):
            total += 2 + 8 * len(item)
        else:
            total += 24
        if total > budget:
            raise _too_big()
    return total


def _check_arguments(args, kwargs) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > MAX_VALUE_CHARS:
                raise RenderLimitExceeded(f"the number {value} is too large for an argument here")
        else:
            _size(value)


def _checked(result):
    if isinstance(result, (str, list, tuple, dict, set, frozenset)):
        _size(result)
    return result


# printf-style conversions: %[(name)][flags][width][.precision][length]type
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def _check_printf(fmt: str, args) -> None:
    total = len(fmt) + _size(args)
    for width, precision in _PRINTF.findall(fmt):
        if width == "*" or precision == "*":
            raise SecurityError("'*' widths are not allowed in templates")
        total += int(width or 0) + int(precision or 0)
        if total > MAX_VALUE_CHARS:
            raise _too_big("the formatted string")
    if total > MAX_VALUE_CHARS:
        raise _too_big("the formatted string")


def _estimate_replace(s, old, new, count=None, *_):
    s, old, new = str(s), str(old), str(new)
    n = s.count(old) if old else len(s) + 1
    if count is not None and int(count) >= 0:
        n = min(n, int(count))
    if len(s) + n * max(0, len(new) - len(old)) > MAX_VALUE_CHARS:
        raise _too_big("the replaced string")


def _estimate_indent(s, width=4, *_, **__):
    s = str(s)
    w = len(width) if isinstance(width, str) else int(width)
    if len(s) + (s.count("\n") + 1) * max(w, 0) > MAX_VALUE_CHARS:
        raise _too_big("the indented string")


def _estimate_wordwrap(s, width=79, break_long_words=True, wrapstring=None, *_, **kwargs):
    s = str(s)
    wrapstring = kwargs.get("wrapstring", wrapstring)
    width = max(int(kwargs.get("width", width)), 1)
    lines = len(s) // width + s.count("\n") + 1
    if len(s) + lines * len(wrapstring if wrapstring is not None else "\n") > MAX_VALUE_CHARS:
        raise _too_big("the wrapped string")


def _estimate_format(value, *args, **kwargs):
    _check_printf(str(value), (args, kwargs))


_ESTIMATES = {"replace": _estimate_replace, "indent": _estimate_indent, "wordwrap": _estimate_wordwrap,
              "format": _estimate_format}


def _guard_filter(name: str, func):
    offset = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
    estimate = _ESTIMATES.get(name)

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        _check_time()
        _check_arguments(args[offset:], kwargs)
        if estimate is not None:
            estimate(*args[offset:], **kwargs)
        return _checked(func(*args, **kwargs))

    return guarded


def _guard_join(func):
    """`join` takes any iterable (a generator too): materialize it, bounded, and size the parts first."""
    offset = 1

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        _check_time()
        args = list(args)
        if len(args) > offset:
            items = []
            for item in args[offset]:
                items.append(item)
                if len(items) > MAX_RANGE * 10:
                    raise _too_big("the joined list")
            args[offset] = items
            separator = args[offset + 1] if len(args) > offset + 1 else kwargs.get("d", "")
            if _size(items) + len(str(separator)) * len(items) > MAX_VALUE_CHARS:
                raise _too_big("the joined string")
        _check_arguments(args[offset + 1:], kwargs)
        return _checked(func(*args, **kwargs))

    return guarded


def _bounded_range(*args):
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise RenderLimitExceeded(f"range() is limited to {MAX_RANGE} items in templates")
    return rng


def _bounded_concat(parts) -> str:
    """Joins block and macro buffers (Environment.concat), refusing to build a string past the limit."""
    total, collected = 0, []
    for part in parts:
        total += len(part)
        if total > MAX_VALUE_CHARS:
            raise _too_big("a block")
        collected.append(part)
    return "".join(collected)


def _bounded_join(join, parts: tuple):
    """The `~` operator: size the operands before joining them."""
    _check_time()
    if sum(_size(part) for part in parts) > MAX_VALUE_CHARS:
        raise _too_big("the joined string")
    result = join(parts)
    if len(result) > MAX_VALUE_CHARS:  # autoescaping can grow it
        raise _too_big("the joined string")
    return result


def _finalize(value):
    _check_time()
    _size(value)
    return value


class _BoundedCodeGenerator(CodeGenerator):
    def visit_Concat(self, node, frame) -> None:
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"environment.bounded_join({func_name}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


# --- the loop watchdog: sys.monitoring JUMP events on template code only ---------------------------

_monitoring_lock = threading.Lock()
_tool_id: int | None = None


def _on_jump(code, instruction_offset, destination_offset):
    _check_time()


def _monitoring_tool() -> int | None:
    global _tool_id
    with _monitoring_lock:
        if _tool_id is None:
            monitoring = sys.monitoring
            for candidate in (4, 3, 2, 1, 0):
                if monitoring.get_tool(candidate) is None:
                    monitoring.use_tool_id(candidate, "cobrador-template-watchdog")
                    monitoring.register_callback(candidate, monitoring.events.JUMP, _on_jump)
                    _tool_id = candidate
                    break
        return _tool_id


def _watch(code: CodeType, tool_id: int) -> None:
    sys.monitoring.set_local_events(tool_id, code, sys.monitoring.events.JUMP)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _watch(const, tool_id)


class TemplateEnvironment(ImmutableSandboxedEnvironment):
    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})
    concat = staticmethod(_bounded_concat)

    def __init__(self, *, html: bool):
        super().__init__(autoescape=html, undefined=ChainableUndefined, finalize=_finalize, loader=None,
                         auto_reload=False, cache_size=0, keep_trailing_newline=True)
        self.globals.clear()
        self.globals.update({"range": _bounded_range, "dict": dict})
        self.filters = {name: (_guard_join(f) if name == "join" else _guard_filter(name, f))
                        for name, f in FILTERS.items()}
        self.bounded_join = _bounded_join

    def _compile(self, source: str, filename: str) -> CodeType:
        code = super()._compile(source, filename)
        tool_id = _monitoring_tool()
        if tool_id is not None:
            _watch(code, tool_id)
        return code

    def is_safe_attribute(self, obj, attr, value) -> bool:
        if isinstance(obj, str) and attr not in SAFE_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value):
        return None  # str.format and format_map are refused by is_safe_attribute instead

    def getattr(self, obj, attribute):
        _check_time()
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        _check_time()
        return super().getitem(obj, argument)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's signature
        _check_time()
        _check_arguments(args, kwargs)
        return _checked(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context, operator, left, right):
        _check_time()
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(times, int) and isinstance(sequence, (str, list, tuple)):
                    if times > 0 and _size(sequence) * times > MAX_VALUE_CHARS:
                        raise _too_big("the repeated value")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
                if right * abs(left).bit_length() > MAX_POWER_BITS:
                    raise RenderLimitExceeded("the power is too large")
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                if _size(left) + _size(right) > MAX_VALUE_CHARS:
                    raise _too_big("the sum")
        elif operator == "%" and isinstance(left, str):
            _check_printf(left, right)
        return _checked(super().call_binop(context, operator, left, right))


_environments = {True: TemplateEnvironment(html=True), False: TemplateEnvironment(html=False)}


@functools.lru_cache(maxsize=1024)
def compile_template(source: str, html: bool):
    """The compiled template (cached by source). Raises TemplateCompileError with the line."""
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateCompileError(f"the template is longer than {MAX_SOURCE_CHARS} characters")
    try:
        return _environments[html].from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateCompileError(exc.message or str(exc), exc.lineno) from None
    except (RecursionError, MemoryError):
        raise TemplateCompileError("the template is nested too deeply") from None


def check_plain(value, path: str = "context") -> None:
    """Templates only ever see plain data: a model object (or anything else) here is a bug."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_plain(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} has a non-string key {key!r}")
            check_plain(item, f"{path}.{key}")
        return
    raise TypeError(f"{path} is a {type(value).__name__}; templates take plain data only")


def _template_line(exc: BaseException) -> int | None:
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render(source: str, context: dict, *, html: bool) -> str:
    """Render one template part. Raises TemplateCompileError or RenderError (never anything else)."""
    template = compile_template(source, html)
    check_plain(context)
    chunks, size = [], 0
    _state.deadline = time.monotonic() + MAX_SECONDS
    try:
        for chunk in template.generate(context):
            size += len(chunk) if chunk.isascii() else len(chunk.encode("utf-8", "surrogatepass"))
            if size > MAX_OUTPUT_BYTES:
                raise RenderLimitExceeded(f"the output would be larger than {MAX_OUTPUT_BYTES} bytes")
            chunks.append(chunk)
            _check_time()
    except RenderError as exc:
        line = _template_line(exc)
        raise type(exc)(f"line {line}: {exc}" if line else str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - anything a template does wrong: undefined calls, bad types, sandbox refusals
        line = _template_line(exc)
        message = f"{type(exc).__name__}: {exc}"[:500]
        raise RenderError(f"line {line}: {message}" if line else message) from None
    finally:
        _state.deadline = None
    return "".join(chunks)


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    html: str
    text: str


def render_message(*, subject: str, html_body: str, text_body: str, context: dict) -> RenderedMessage:
    """All three parts; the subject on one line (no header injection), at most 500 characters."""
    rendered_subject = " ".join(render(subject, context, html=False).split())[:500]
    return RenderedMessage(subject=rendered_subject, html=render(html_body, context, html=True),
                           text=render(text_body, context, html=False))


def compile_errors(parts: dict[str, str]) -> list[dict]:
    """[{field, line, message}] for each part that does not compile (empty when all do)."""
    errors = []
    for field_name, source in parts.items():
        try:
            compile_template(source, field_name == "html_body")
        except TemplateCompileError as exc:
            where = f"line {exc.line}: " if exc.line else ""
            errors.append({"field": field_name, "line": exc.line, "message": f"{where}{exc.message}"})
    return errors
