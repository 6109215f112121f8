"""Runs the schemathesis CLI (`st`) with one guard around a CPython bug.

Hypothesis names each filtered strategy after the source of its lambda, parsing the module that
defines it with `ast.parse`. On CPython 3.11 before 3.11.8, that parse can raise
`SystemError: AST constructor recursion depth mismatch` when it happens deep in a generator
stack (python/cpython#106905), and schemathesis reports the operation it was generating for as
an error. The name is only ever shown in a strategy's repr, so a lambda that cannot be named is
named `<unknown>`, as Hypothesis itself does when it cannot find the source; every request is
generated and checked exactly as before.
"""

import sys

from hypothesis.internal import lambda_sources

_describe = lambda_sources._lambda_description


def _describe_or_unknown(f, *args, **kwargs):
    try:
        return _describe(f, *args, **kwargs)
    except SystemError:
        return "lambda: <unknown>"


lambda_sources._lambda_description = _describe_or_unknown

from schemathesis.cli import schemathesis  # noqa: E402  (after the guard is in place)

if __name__ == "__main__":
    sys.argv[0] = "st"
    sys.exit(schemathesis())
