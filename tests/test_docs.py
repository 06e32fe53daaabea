"""The operator's documents: a short README, every setting documented, links that lead somewhere, no history."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.test_compose import settings_variables

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
REQUIRED_DOCS = ["configuration.md", "api.md", "operations.md", "performance.md", "testing.md"]
README_MAX_LINES = 300
# Keys of a WSGI request's environ that sorcha_site's middleware reads: request headers, not settings.
REQUEST_KEYS = {"CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING"}
# Phrases of a diary of earlier runs, which an operator cannot use.
DIARY = ["this stop", "previous stop", "this session", "earlier session", "last session"]
# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def documents() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(match) for match in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.MULTILINE)}


def links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text()))


def test_the_readme_is_at_most_300_lines() -> None:
    lines = README.read_text().splitlines()

    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail under docs/"


@pytest.mark.parametrize("name", REQUIRED_DOCS)
def test_each_document_exists_and_the_readme_links_it(name: str) -> None:
    assert (DOCS / name).is_file(), f"docs/{name} is missing"
    assert f"docs/{name}" in links(README), f"README.md does not link docs/{name}"


def test_the_configuration_page_names_every_variable_the_settings_read() -> None:
    variables = settings_variables() - REQUEST_KEYS
    page = (DOCS / "configuration.md").read_text()

    missing = sorted(name for name in variables if f"`{name}`" not in page)

    assert "SECRET_KEY" in variables and "REDIS_URL" in variables  # the parse still finds the settings
    assert not missing, f"docs/configuration.md does not describe: {', '.join(missing)}"


@pytest.mark.parametrize("document", documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(document: Path) -> None:
    broken = []
    for target in links(document):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (document.parent / file_part).resolve() if file_part else document
        if not resolved.is_file():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no such heading)")

    assert not broken, f"{document.relative_to(ROOT)}: {broken}"


@pytest.mark.parametrize("document", documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_document_tells_the_story_of_earlier_runs(document: Path) -> None:
    text = document.read_text().lower()

    found = [phrase for phrase in DIARY if phrase in text]

    assert not found, f"{document.relative_to(ROOT)} speaks of {found}: describe the software as it is now"


# A test a document names: `tests/<path>.py`, `tests/<path>.py::name`, or `::name` in the file named before it.
NAMED_TEST = re.compile(r"`((?:tests/[\w/]+\.py)?)(?:::(\w+))?`")


def test_every_test_the_design_names_for_a_mechanism_exists() -> None:
    """docs/design.md maps each mechanism to the test that fails without it: each test it names is there."""
    named, missing, current = 0, [], ""
    for path, name in NAMED_TEST.findall((DOCS / "design.md").read_text()):
        current = path or current
        if not current:
            continue
        source = ROOT / current
        named += 1
        if not source.is_file() or (name and not re.search(rf"^\s*def {name}\(", source.read_text(), re.MULTILINE)):
            missing.append(f"{current}::{name}" if name else current)
    assert named >= 20, "the design names the tests of its mechanisms"
    assert missing == []
