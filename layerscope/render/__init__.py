"""Render stage: Report → rich tables, JSON, Markdown, CSV, SVG/HTML. Never imports torch."""
