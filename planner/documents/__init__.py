"""One content model for every document (:mod:`planner.documents.model`), written as
Markdown, one self-contained HTML page or DOCX; charts as PNG (:mod:`planner.treaty.charts`).
"""

from planner.documents.model import (
    Blank,
    Document,
    Figure,
    Heading,
    Paragraph,
    Table,
    to_docx,
    to_html,
    to_markdown,
    write_document,
)

__all__ = ["Blank", "Document", "Figure", "Heading", "Paragraph", "Table", "to_docx",
           "to_html", "to_markdown", "write_document"]
