"""Small agent-stream/1 backends on three server stacks, correct or broken in one way.

They prove the conformance suite works: ``tests/test_defects.py`` runs the suite
against each defect and checks that the rule named in ``defects.DEFECTS`` fails
(or warns), and that the correct backend of every stack passes. The stream is
canned (``canned``), the pacing and gauge shared (``driver``); each stack module
is a thin transport layer.
"""
