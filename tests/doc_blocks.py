"""Finds the code blocks of the Markdown pages (README.md and docs/).

conftest.py runs every Python block as a test; tests/test_docs.py checks
that no block escapes that by being labelled in a way the runner skips.
"""

from __future__ import annotations

import ast
import doctest
import re
from typing import NamedTuple

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


class Block(NamedTuple):
  """One fenced code block of a page."""

  line: int  # 1-based line of the block's first line of code
  language: str  # the info string's language ("" when none is given)
  source: str


def fenced_blocks(text: str) -> list[Block]:
  """The fenced code blocks of a Markdown (CommonMark or MyST) page.

  MyST's ``{code-block} python`` counts as language ``python``; its option
  lines (``:caption: ...``) are not part of the source. A fence inside
  another block (e.g. a Markdown example in a four-backtick block) is
  content, not a block of its own.

  Args:
    text: the page.

  Returns:
    The blocks, in page order.
  """
  blocks = []
  lines = text.splitlines()
  i = 0
  while i < len(lines):
    m = FENCE.match(lines[i])
    if not m or "`" in m["info"]:
      i += 1
      continue
    fence, indent = m["fence"], len(m["indent"])
    words = m["info"].split()
    if words[:1] == ["{code-block}"]:
      words = words[1:]
    j = i + 1
    body = []
    while j < len(lines):
      stripped = lines[j].strip()
      closes = stripped.startswith(fence[0] * len(fence))
      if closes and not stripped.strip(fence[0]):
        break
      line = lines[j]
      body.append(line[min(indent, len(line) - len(line.lstrip())) :])
      j += 1
    first = i + 2
    if m["info"].lstrip().startswith("{"):
      # MyST directive options (":caption: ...") precede the code.
      while body and body[0].startswith(":"):
        body.pop(0)
        first += 1
    source = "\n".join(body) + "\n"
    blocks.append(Block(first, words[0] if words else "", source))
    i = j + 1
  return blocks


def python_blocks(text: str) -> list[Block]:
  """The blocks of ``text`` that are run as tests: language ``python``."""
  return [b for b in fenced_blocks(text) if b.language == "python"]


def is_doctest(source: str) -> bool:
  """Whether a block is an interactive session (``>>>``) to check."""
  return source.lstrip().startswith(">>>")


def imported_modules(source: str) -> set[str]:
  """The top-level packages a block imports (absolute imports only)."""
  if is_doctest(source):
    examples = doctest.DocTestParser().get_examples(source)
    source = "".join(e.source for e in examples)
  names = set()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      names.update(a.name.split(".")[0] for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      names.add(node.module.split(".")[0])
  return names
