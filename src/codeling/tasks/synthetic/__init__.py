"""Synthetic function tasks in HumanEval's shape, many families and many surface forms.

    from codeling.tasks.synthetic import generate_tasks
    tasks = generate_tasks(50_000, seed=0, levels=(1, 2), categories=["lists", "strings"])

Each family (core.py) is one skill; each task renders it with a random function name,
argument names, type-hint style, docstring phrasing and layout, example style and solution
style (render.py); tests and examples are computed by running the reference (sampler.py).
"""

from codeling.tasks.synthetic import (  # noqa: F401  (importing registers the families)
    algorithms,
    lists,
    logic,
    loops,
    math,
    misc,
    strings,
    structures,
)
from codeling.tasks.synthetic.core import CATEGORIES, FAMILIES, Family, family
from codeling.tasks.synthetic.generator import generate_tasks
from codeling.tasks.synthetic.sampler import make_task

__all__ = ["CATEGORIES", "FAMILIES", "Family", "family", "generate_tasks", "make_task"]
