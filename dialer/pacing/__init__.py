"""Pacing calls by free operators (issue 12): pure maths in ``pacer``, the operator tracker in
``operators``, the worker's wiring in ``live``."""
