"""The template sandbox: known escape payloads are refused or render harmlessly, within 1 s and 1 MB."""

import time

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from cobrador.notifications import defaults, registry
from cobrador.notifications.formatting import LOCALES
from cobrador.notifications.rendering import (
    MAX_OUTPUT_BYTES,
    RenderError,
    RenderLimitExceeded,
    TemplateCompileError,
    TemplateEnvironment,
    compile_errors,
    render,
    render_message,
)

CONTEXT = {"account": {"name": "Maria", "email": "maria@example.com"}, "items": ["a", "b"], "n": 3}

# Each payload must raise RenderError / TemplateCompileError, or render text with none of these in it.
LEAKS = ("<class", "subprocess", "__globals__", "popen", "builtins", "uid=", "<module", "<function", "object at 0x",
         "Context object", "SECRET_KEY")

ESCAPE_CORPUS = [
    # __class__ walks
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__base__.__subclasses__()[40]('/etc/passwd').read() }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ n.__class__.__mro__ }}",
    "{{ items.__class__.__init__.__globals__ }}",
    "{{ account.__class__ }}",
    "{{ account['__class__'] }}",
    "{{ items.pop.__self__ }}",
    "{{ (items|first).__class__ }}",
    # |attr tricks
    "{{ ''|attr('__class__')|attr('__mro__') }}",
    "{{ (''|attr('\\x5f\\x5fclass\\x5f\\x5f'))|attr('\\x5f\\x5fmro\\x5f\\x5f') }}",
    "{{ items|attr('__class__')|attr('__base__')|attr('__subclasses__')() }}",
    "{{ items|map(attribute='__class__')|list }}",
    "{{ items|selectattr('__class__')|list }}",
    "{{ account|attr('__init__')|attr('__globals__') }}",
    "{{ ''|attr('format')('{0.__class__}') }}",
    "{{ '{0.__class__.__mro__}'.format(items) }}",
    "{{ '%s'|format(''.__class__) }}",
    # globals: cycler, joiner, lipsum, namespace
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ namespace.__init__.__globals__.__builtins__ }}",
    "{% set ns = namespace(a=1) %}{{ ns.__init__.__globals__ }}",
    "{{ cycler(1, 2).next() }}",
    "{{ range.__self__ }}",
    "{{ dict.__class__.__subclasses__(dict) }}",
    "{{ dict.mro() }}",
    # the template reference and its context
    "{{ self }}",
    "{{ self._TemplateReference__context }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
    "{{ self.__dict__ }}",
    "{{ context }}{{ config }}{{ request }}{{ settings }}{{ environment }}",
    # mutation of the data
    "{{ items.append('x') }}{{ items }}",
    "{{ account.update({'name': 'x'}) }}{{ account }}",
    "{% set _ = items.clear() %}{{ items }}",
    # loaders: nothing to include or import
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}{{ os }}",
    "{% extends '/etc/passwd' %}",
]

RESOURCE_CORPUS = [
    ("{{ range(10**9)|list }}", RenderLimitExceeded),
    ("{% for i in range(100000000) %}{% endfor %}", RenderLimitExceeded),
    ("{{ range(100001)|length }}", RenderLimitExceeded),
    ("{{ 'a' * 100000000 }}", RenderLimitExceeded),
    ("{{ [1, 2] * 100000000 }}", RenderLimitExceeded),
    ("{{ 2 ** 100000000 }}", RenderLimitExceeded),
    ("{{ 'x'|center(100000000) }}", RenderLimitExceeded),
    ("{{ 'x'.ljust(100000000) }}", RenderError),
    ("{{ '%100000000s' % 'x' }}", RenderLimitExceeded),
    ("{{ '%100000000s'|format('x') }}", RenderLimitExceeded),
    ("{{ ('ab' * 400000)|replace('a', 'aaaa') }}", RenderLimitExceeded),
    ("{{ ('x\\n' * 400000)|indent(100) }}", RenderLimitExceeded),
    ("{{ ('x ' * 400000)|wordwrap(1, wrapstring='-----') }}", RenderLimitExceeded),
    ("{% set a = 'x' * 900000 %}{{ a ~ a }}", RenderLimitExceeded),
    ("{% set a = 'x' * 900000 %}{% set b = a + a %}", RenderLimitExceeded),
    ("{% set l = range(10000)|list %}{% set m = [l, l, l, l, l, l, l, l, l, l] %}{{ [m, m, m, m, m] }}",
     RenderLimitExceeded),
    ("{% set l = range(10000)|list %}{% set m = [" + ", ".join(["l"] * 20) + "] %}{{ m|join(',') }}",
     RenderLimitExceeded),
    ("{% macro double(s, n) %}{{ double(s ~ s, n - 1) if n else s|length }}{% endmacro %}{{ double('x', 40) }}",
     RenderLimitExceeded),
    ("{% set s %}{% for i in range(10000) %}{% for j in range(10000) %}xxxxxxxx{% endfor %}{% endfor %}{% endset %}",
     RenderLimitExceeded),
    ("{% for i in range(10000) %}{% for j in range(10000) %}xxxxxxxxxx{% endfor %}{% endfor %}", RenderLimitExceeded),
    ("{% set x = range(10000) %}{% for i in x %}{% for j in x %}{% for k in x %}{% endfor %}{% endfor %}{% endfor %}",
     RenderLimitExceeded),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", RenderError),
]


def test_the_environment_is_jinjas_immutable_sandbox_with_html_autoescaping():
    html, text = TemplateEnvironment(html=True), TemplateEnvironment(html=False)
    assert isinstance(html, ImmutableSandboxedEnvironment)
    assert html.autoescape is True and text.autoescape is False
    assert set(html.globals) == {"range", "dict"}
    assert render("{{ account.name }}", {"account": {"name": "<script>x</script>"}}, html=True) == \
        "&lt;script&gt;x&lt;/script&gt;"
    assert render("{{ account.name }}", {"account": {"name": "<b>"}}, html=False) == "<b>"


@pytest.mark.parametrize("payload", ESCAPE_CORPUS)
@pytest.mark.parametrize("html", [True, False])
def test_sandbox_escape_payloads_are_refused_or_harmless(payload, html):
    started = time.monotonic()
    try:
        output = render(payload, CONTEXT, html=html)
    except (RenderError, TemplateCompileError):
        pass
    else:
        assert not any(leak in output for leak in LEAKS), output[:300]
    assert time.monotonic() - started < 1.5
    assert CONTEXT == {"account": {"name": "Maria", "email": "maria@example.com"}, "items": ["a", "b"], "n": 3}


@pytest.mark.parametrize("payload,error", RESOURCE_CORPUS)
def test_resource_payloads_stop_within_the_limits(payload, error):
    started = time.monotonic()
    with pytest.raises(error):
        render(payload, CONTEXT, html=True)
    assert time.monotonic() - started < 1.6


def test_the_time_limit_is_one_second():
    started = time.monotonic()
    with pytest.raises(RenderLimitExceeded, match="longer than 1 s"):
        render("{% set x = range(10000) %}{% for i in x %}{% for j in x %}{% endfor %}{% endfor %}", {}, html=False)
    assert 0.95 < time.monotonic() - started < 1.5


def test_the_output_limit_is_one_megabyte():
    just_under = "{% for i in range(999) %}" + "x" * 1000 + "{% endfor %}"
    assert len(render(just_under, {}, html=False)) == 999_000
    with pytest.raises(RenderLimitExceeded, match=f"larger than {MAX_OUTPUT_BYTES} bytes"):
        render("{% for i in range(1001) %}" + "x" * 1000 + "{% endfor %}", {}, html=False)
    with pytest.raises(RenderLimitExceeded):  # counted in bytes: 'é' is two
        render("{% for i in range(600) %}" + "é" * 1000 + "{% endfor %}", {}, html=False)


def test_only_plain_data_reaches_a_template(api):
    with pytest.raises(TypeError, match="plain data"):
        render("{{ org.name }}", {"org": api.organization}, html=False)
    with pytest.raises(TypeError, match=r"context\.rows\[0\]"):
        render("{{ rows }}", {"rows": [object()]}, html=False)


def test_a_template_that_does_not_compile_names_its_line():
    with pytest.raises(TemplateCompileError) as caught:
        render("Hello\n{{ account.name }\nbye", CONTEXT, html=False)
    assert caught.value.line == 2
    assert compile_errors({"subject": "ok", "html_body": "a\nb\n{% if x %}"}) == [
        {"field": "html_body", "line": 3, "message": "line 3: Unexpected end of template. Jinja was looking for the "
                                                       "following tags: 'elif' or 'else' or 'endif'. The innermost "
                                                       "block that needs to be closed is 'if'."}]


def test_runtime_errors_carry_the_template_line():
    with pytest.raises(RenderError, match=r"line 3: ZeroDivisionError"):
        render("a\nb\n{{ 1 / 0 }}", {}, html=False)


def test_ordinary_templates_keep_working():
    source = ("{% for item in items %}{{ loop.index }}. {{ item|upper }}{{ ', ' if not loop.last }}{% endfor %}"
              " | {{ '%05.1f'|format(3.14159) }} | {{ account.name|truncate(4, True, '', 0) }} | "
              "{{ items|join('-') }} | {{ 'a b'.split()|length }} | {{ n * 2 }} | {{ 'ab' * 3 }} | {{ 2 ** 10 }}")
    assert render(source, CONTEXT, html=False) == "1. A, 2. B | 003.1 | Mari | a-b | 2 | 6 | ababab | 1024"


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("type_name", list(registry.TYPES))
def test_every_shipped_template_renders_with_its_sample_data(type_name, locale):
    assert defaults.check_defaults() == []
    parts = defaults.default_template(type_name, locale)
    message = render_message(subject=parts.subject, html_body=parts.html_body, text_body=parts.text_body,
                             context=registry.sample_context(type_name, locale))
    assert message.subject and "\n" not in message.subject
    assert message.html.startswith("<!DOCTYPE html>") and f'lang="{locale}"' in message.html
    assert "Acme" in message.text and "{{" not in message.text and "{%" not in message.html
    if registry.TYPES[type_name].audience == registry.ACCOUNT:
        assert "https://example.com/unsubscribe" in message.text
