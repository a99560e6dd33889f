"""A tiny document model rendered to both Markdown and HTML (no Markdown library needed)."""

from __future__ import annotations

import html


class Doc:
    def __init__(self) -> None:
        self.blocks: list[tuple[str, object]] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("h", (level, text)))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        if rows:
            self.blocks.append(("table", (header, rows)))

    def code(self, text: str, lang: str = "") -> None:
        self.blocks.append(("code", (lang, text)))

    def image(self, src: str, alt: str) -> None:
        self.blocks.append(("img", (src, alt)))

    def markdown(self) -> str:
        out = []
        for kind, b in self.blocks:
            if kind == "h":
                out.append("#" * b[0] + " " + b[1])
            elif kind == "p":
                out.append(b)
            elif kind == "ul":
                out.append("\n".join(f"- {x}" for x in b))
            elif kind == "table":
                header, rows = b
                cells = [[c.replace("|", "\\|") for c in r] for r in [header, *rows]]
                lines = ["| " + " | ".join(r) + " |" for r in cells]
                lines.insert(1, "|" + "---|" * len(header))
                out.append("\n".join(lines))
            elif kind == "code":
                fence = "````" if "```" in b[1] else "```"
                out.append(f"{fence}{b[0]}\n{b[1].rstrip()}\n{fence}")
            elif kind == "img":
                out.append(f"![{b[1]}]({b[0]})")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        e = html.escape
        out = []
        for kind, b in self.blocks:
            if kind == "h":
                out.append(f"<h{b[0]}>{e(b[1])}</h{b[0]}>")
            elif kind == "p":
                out.append(f"<p>{e(b)}</p>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in b) + "</ul>")
            elif kind == "table":
                header, rows = b
                head = "".join(f"<th>{e(c)}</th>" for c in header)
                body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>"
                               for r in rows)
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif kind == "code":
                out.append(f"<pre><code>{e(b[1].rstrip())}</code></pre>")
            elif kind == "img":
                out.append(f'<img src="{e(b[0])}" alt="{e(b[1])}">')
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
                 "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
                 "text-align:left}pre{background:#f5f5f5;padding:8px;overflow-x:auto}"
                 "img{max-width:100%}")
        return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
                f"<style>{style}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")
