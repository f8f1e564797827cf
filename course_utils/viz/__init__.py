"""Visualizers: each one is a function that returns an object (Figure, Digraph or widget).

Import from the concept module, e.g. ``from course_utils.viz.strides import show_strides``.
"""
