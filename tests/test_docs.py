"""The integrator docs quote the code's facts; these keep them from drifting apart."""

import json
import re
from pathlib import Path

from cobrador.gateways.sandbox import TEST_CARD_TOKENS
from cobrador.organizations.models import DunningConfig

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_sandbox_table_lists_every_test_card_token_and_no_other():
    text = (DOCS / "getting-started.md").read_text()

    assert set(re.findall(r"^\| `(tok_sandbox_\w+)` \|", text, re.MULTILINE)) == set(TEST_CARD_TOKENS)
    for token, outcome in TEST_CARD_TOKENS.items():
        if outcome.failure_code:
            assert f"| `{token}` | failed, {outcome.decline_class} decline, `{outcome.failure_code}`" in text


def test_the_dunning_defaults_are_the_models():
    text = (DOCS / "dunning.md").read_text()

    for name, value in DunningConfig.DEFAULTS.items():
        shown = f"`{json.dumps(value)}`" if isinstance(value, list) else str(value).lower()
        assert f"| `{name}` | {shown} |" in text, name


def test_every_guide_is_linked_from_the_index_and_the_readme():
    index = (DOCS / "README.md").read_text()
    readme = (DOCS.parent / "README.md").read_text()
    for guide in DOCS.glob("*.md"):
        if guide.name != "README.md":
            assert f"({guide.name})" in index
            assert f"(docs/{guide.name})" in readme
