"""mkdocs hook (``hooks:`` in mkdocs.yml): a line ``<!-- floors -->`` in a page becomes the picture
of the package floors, drawn from ``cinerec.FLOORS`` (the rule ``tests/test_imports.py`` checks), so
the documentation and the test never disagree."""

from cinerec import floors_picture

MARKER = "<!-- floors -->"


def on_page_markdown(markdown: str, **_) -> str:
    return markdown.replace(MARKER, f"```\n{floors_picture()}\n```") if MARKER in markdown else markdown
