"""A teacher model writes tasks: the prompts that ask for one, the client, and the reply parser.

The prompts are documented in docs/distill.md. Each request asks for ONE task of a given
category and level, as one Python code block holding a complete function (signature, docstring
with `>>>` examples, body) followed by `def check(candidate):` with at least 3 asserts.

`parse_reply(text, category, level)` turns a reply into a `Task` or a rejection reason. It
accepts what teachers actually write: markdown fences (```python, ```py, ```, unclosed) or none,
chatter before and after, CRLF, tab indentation, the task split over several blocks, tests as
`test_*` functions, a `check()` without arguments or bare top-level asserts (wrapped into a
`check(candidate)`), helper functions and imports (kept in the prompt, before the entry point),
and `if __name__ == "__main__":` / `print(...)` / `check(f)` lines (dropped).
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from codeling.tasks.build import content_key
from codeling.tasks.schema import Task

CATEGORY_TOPICS: dict[str, str] = {
    "arithmetic": "arithmetic and math (sums, products, division and modulo, powers, min/max/abs, "
                  "gcd and lcm, factorials, Fibonacci numbers, prime checks, digit manipulation)",
    "lists": "list operations (indexing, sums and counts, averages, filtering, deduplication, "
             "mapping, searching, finding extremes)",
    "strings": "string operations (reversing, case changes, prefixes and suffixes, palindromes, "
               "splitting and joining, counting vowels, words or characters)",
    "algorithms": "classic algorithms (sorting, binary search, merging sorted lists, two "
                  "pointers, recursion)",
    "data_structures": "data structures (nested lists, dictionaries, sets, stacks, queues, "
                       "flattening, rotating, grouping)",
    "logic": "logic and conditionals (if/elif chains, early returns, all/any, edge cases such "
             "as empty input or None)",
    "loops": "loops (range, enumerate, while loops, nested loops, break and continue)",
    "file_io": "file input and output (write text to a path given as an argument, read it "
               "back, count lines; the tests create their own files in the current directory)",
    "error_handling": "error handling (try/except, raising ValueError or TypeError on bad "
                      "input, returning a default on failure)",
    "oop": "small classes (define a small class above the function; the function creates and "
           "uses instances of it)",
}
CATEGORIES = list(CATEGORY_TOPICS)

LEVELS: dict[int, str] = {
    1: "level 1 (basic): one or two lines of logic, arithmetic or a single built-in call",
    2: "level 2 (intermediate): a loop or conditional logic over the input, 3-10 lines",
    3: "level 3 (harder): recursion or a classic algorithm, up to about 20 lines",
}

SYSTEM = ("You are an expert Python teacher who writes small, correct programming exercises "
          "with tests.")

USER = """Write ONE new Python programming task about {topic}.
Difficulty: {level}.
Variation #{index}: pick an uncommon function name and a specific, concrete behaviour so that this
task differs from other tasks of the same kind.

Reply with a single ```python code block that contains, in this order:
1. the complete function: its signature with type hints, a docstring that states the task
   precisely and shows two or three `>>>` examples, and a correct implementation;
2. `def check(candidate):` with at least 3 `assert` statements that call `candidate`,
   including one edge case.
Use only the standard library. No printing, no input(), no code outside the two functions
except imports. Keep the solution under 20 lines."""


def build_messages(category: str, level: int, index: int) -> list[dict]:
    """The chat messages of request `index` (the index varies the task and seeds sampling)."""
    user = USER.format(topic=CATEGORY_TOPICS[category], level=LEVELS[level], index=index)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def completion_prompt(messages: list[dict]) -> str:
    """The same request as one text prompt, for `--api completions` endpoints."""
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


# ---- the parser ----

_FENCE = re.compile(r"^[ \t]*(```|~~~)[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)",
                    re.M | re.S)
_CODE_START = re.compile(r"^(def |async def |class |import |from \S+ import |@\w|assert )")
_NOT_PYTHON = {"bash", "sh", "shell", "console", "text", "txt", "output", "json", "pycon",
               "plaintext"}


class Rejected(ValueError):
    """A reply that does not hold a usable task; the message is the reason."""


@dataclass
class Parsed:
    prefix: str  # imports and helpers placed before the entry point
    func: ast.FunctionDef
    tests: str  # the check(candidate) function (and any test_* functions it calls)


def normalise_text(text: str) -> str:
    """CRLF/CR to LF, and leading tabs to 4 spaces (mixed indentation would not parse)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"^[ \t]+", lambda m: m.group(0).replace("\t", "    "), text, flags=re.M)


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except SyntaxError:
        return False


def extract_code(text: str) -> str:
    """The Python source in a reply: its fenced blocks, or the unfenced code amid chatter."""
    blocks = [m.group(3) for m in _FENCE.finditer(text) if m.group(2).lower() not in _NOT_PYTHON]
    blocks = [b for b in blocks if b.strip()]
    if blocks:
        # as written (a body-only block continues the block before it), then each dedented
        # (a block indented as a whole), then only the blocks that parse on their own
        for parts in (blocks, [textwrap.dedent(b) for b in blocks]):
            joined = "\n".join(b.rstrip("\n") + "\n" for b in parts)
            if _parses(joined):
                return joined
        good = [textwrap.dedent(b) for b in blocks if _parses(textwrap.dedent(b))]
        return "\n".join(good) if good else joined
    lines = text.split("\n")
    start = next((i for i, ln in enumerate(lines) if _CODE_START.match(ln)), None)
    if start is None:
        return ""
    lines = lines[start:]
    for end in range(len(lines), 0, -1):  # drop trailing chatter until the rest parses
        code = "\n".join(lines[:end]) + "\n"
        if _parses(code):
            return code
    return "\n".join(lines) + "\n"


def _is_test_name(name: str) -> bool:
    return name == "check" or name.startswith("test")


def _count_asserts(nodes: list[ast.stmt]) -> int:
    """Asserts in the tests; one inside a loop over cases counts as 3."""
    count = 0
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, (ast.For, ast.While)):
                count += 2 * sum(isinstance(s, ast.Assert) for s in ast.walk(sub))
            elif isinstance(sub, ast.Assert):
                count += 1
    return count


def _is_noise(node: ast.stmt) -> bool:
    """Top-level statements that only run or print things: `print(...)`, `check(f)`, main."""
    if isinstance(node, ast.If):
        test = ast.unparse(node.test)
        return "__name__" in test
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        return True
    return isinstance(node, ast.Expr)  # stray strings


def split_module(code: str) -> Parsed:
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise Rejected(f"syntax error: {e.msg} (line {e.lineno})") from e
    lines = code.split("\n")

    def src(node: ast.stmt) -> str:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        return "\n".join(lines[first - 1:node.end_lineno]) + "\n"

    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    candidates = [f for f in funcs if not _is_test_name(f.name)]
    tests = [f for f in funcs if _is_test_name(f.name)]
    asserts = [n for n in tree.body if isinstance(n, ast.Assert)]
    if not candidates:
        raise Rejected("no function to solve (only tests or classes)")
    if not tests and not asserts:
        raise Rejected("no tests (no check function, test_* function or assert)")
    test_text = " ".join(ast.unparse(t) for t in [*tests, *asserts])
    called = [f for f in candidates if re.search(rf"\b{re.escape(f.name)}\b", test_text)]
    pool = called or candidates  # the entry point is what the tests call (helpers are not)
    func = ([f for f in pool if ast.get_docstring(f)] or pool)[-1]
    kept = [src(n) for n in tree.body
            if n not in tests and n not in asserts and not _is_noise(n)
            and not (isinstance(n, ast.FunctionDef) and n.name == func.name)]
    prefix = "\n".join(kept) + "\n\n" if kept else ""
    return Parsed(prefix, func, _tests_source(tests, asserts, src))


def _tests_source(tests: list[ast.FunctionDef], asserts: list[ast.Assert], src) -> str:
    if _count_asserts([*tests, *asserts]) < 3:
        raise Rejected(f"tests have {_count_asserts([*tests, *asserts])} asserts (need >= 3)")
    check = next((t for t in tests if t.name == "check" and t.args.args), None)
    if check is not None and not asserts and len(tests) == 1:
        return src(check)
    # other shapes: wrap them into check(candidate), which calls each test in turn
    helpers = [t for t in tests if t is not check]
    renamed = {"check": "_teacher_check"}
    out, body = "", []
    for t in [*helpers, *([check] if check else [])]:
        name = renamed.get(t.name, t.name)
        out += src(t).replace(f"def {t.name}(", f"def {name}(", 1) + "\n"
        body.append(f"    {name}({'candidate' if t.args.args else ''})")
    body += [textwrap.indent(ast.unparse(a), "    ") for a in asserts]
    return out + "def check(candidate):\n" + "\n".join(body) + "\n"


def parse_reply(text: str, category: str, level: int) -> Task:
    """A Task (source "teacher", task_id `teacher/<hash>`) or raise Rejected(reason)."""
    if not text or not text.strip():
        raise Rejected("empty reply")
    code = extract_code(normalise_text(text))
    if not code.strip():
        raise Rejected("no Python code in the reply")
    parsed = split_module(code)
    func = parsed.func
    lines = code.split("\n")
    doc = func.body[0] if func.body else None
    if not (isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
            and isinstance(doc.value.value, str)):
        raise Rejected(f"function {func.name!r} has no docstring (the task statement)")
    if len(func.body) < 2:
        raise Rejected(f"function {func.name!r} has a docstring but no body")
    if doc.end_lineno >= func.body[1].lineno:
        raise Rejected(f"function {func.name!r}: the body starts on the docstring's line")
    first = min([func.lineno, *(d.lineno for d in func.decorator_list)])
    prompt = parsed.prefix + "\n".join(lines[first - 1:doc.end_lineno]) + "\n"
    solution = "\n".join(lines[doc.end_lineno:func.end_lineno]).rstrip() + "\n"
    solution = solution.lstrip("\n")
    return Task(task_id=f"teacher/{content_key(prompt, solution)}", prompt=prompt,
                entry_point=func.name, canonical_solution=solution, test=parsed.tests,
                category=category, level=level, source="teacher")


# ---- the client ----

class TeacherError(RuntimeError):
    """The teacher cannot be used at all (authentication, connection, a refused request)."""


class RequestFailed(RuntimeError):
    """One request failed after its retries (timeout, 429, 5xx); other requests may succeed."""


class Teacher:
    """Any OpenAI-compatible endpoint, through the official `openai` client.

    The client retries 408/409/429/5xx and connection errors `retries` times with exponential
    backoff (0.5 s doubling, jittered), and gives each attempt `timeout` seconds.
    """

    def __init__(self, endpoint: str, model: str, api_key: str | None = None,
                 api: str = "chat", timeout: float = 120.0, retries: int = 4,
                 temperature: float = 0.8, max_tokens: int = 1024, key_env: str | None = None):
        import openai

        if api not in ("chat", "completions"):
            raise ValueError(f"api must be chat or completions, not {api!r}")
        self.endpoint, self.model, self.api = endpoint, model, api
        self.temperature, self.max_tokens, self.key_env = temperature, max_tokens, key_env
        # local servers need no key, but the client insists on one
        self.client = openai.OpenAI(base_url=endpoint, api_key=api_key or "none",
                                    timeout=timeout, max_retries=retries)

    def ask(self, category: str, level: int, index: int, seed: int = 0) -> str:
        """The reply text of request `index`. Raises TeacherError or RequestFailed."""
        import openai

        messages = build_messages(category, level, index)
        kw = {"model": self.model, "temperature": self.temperature,
              "max_tokens": self.max_tokens, "seed": seed + index}
        try:
            if self.api == "chat":
                r = self.client.chat.completions.create(messages=messages, **kw)
                return (r.choices[0].message.content or "") if r.choices else ""
            r = self.client.completions.create(prompt=completion_prompt(messages), **kw)
            return r.choices[0].text if r.choices else ""
        except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
            hint = (f"check --api-key-env {self.key_env}" if self.key_env
                    else "no key was sent: pass --api-key-env VAR")
            raise TeacherError(f"authentication failed for {self.endpoint} ({hint}; HTTP "
                               f"{e.status_code})") from e
        except openai.APITimeoutError as e:
            raise RequestFailed(f"timed out after {self.client.timeout} s") from e
        except openai.APIConnectionError as e:
            raise TeacherError(f"cannot connect to {self.endpoint} ({e.__cause__ or e})") from e
        except (openai.RateLimitError, openai.InternalServerError) as e:
            raise RequestFailed(f"HTTP {e.status_code} after retries: {e.message}") from e
        except openai.APIStatusError as e:  # 400/404/422: every request would fail the same way
            raise TeacherError(f"{self.endpoint} refused the request (HTTP {e.status_code}): "
                               f"{e.message}") from e
