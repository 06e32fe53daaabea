"""The admin is branded as this software: "Sorcha node", on the login page and every admin page."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def title_and_header(html: str) -> tuple[str, str]:
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    header = re.search(r'<div id="site-name">(.*?)</div>', html, re.S)
    assert title and header, html[:500]
    return title.group(1).strip(), re.sub(r"<[^>]+>", "", header.group(1)).strip()


def test_the_login_page_is_branded_sorcha_node() -> None:
    html = Client().get("/admin/login/").content.decode()

    title, header = title_and_header(html)
    assert title == "Log in | Sorcha node"
    assert header == "Sorcha node"
    assert "Django" not in title + header


def test_the_admin_index_is_branded_sorcha_node(admin_client: Client) -> None:
    html = admin_client.get("/admin/").content.decode()

    title, header = title_and_header(html)
    assert title == "Sorcha node administration | Sorcha node"
    assert header == "Sorcha node"
    assert "Django administration" not in html
    assert "Django site admin" not in html
