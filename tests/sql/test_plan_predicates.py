"""Pruning predicates read from DataFusion's own expressions (``apiary.sql.plan``)."""

from __future__ import annotations

from datafusion import SessionContext, col, functions, lit

from apiary.sql.plan import to_predicate
from apiary.sql.pruning import Cmp, InList


def test_comparisons_and_in_lists_become_predicates() -> None:
    assert to_predicate(col("a") >= lit(3)) == Cmp("a", ">=", 3)
    assert to_predicate(lit(3) > col("a")) == Cmp("a", "<", 3)
    assert to_predicate(functions.in_list(col("s"), [lit("x"), lit("y")])) == InList(
        "s", ("x", "y"), negated=False
    )


def test_a_scalar_function_the_bindings_cannot_convert_never_prunes() -> None:
    SessionContext()  # the function registry
    sub = functions.substring(col("phone"), lit(1), lit(2))
    assert to_predicate(functions.in_list(sub, [lit("13"), lit("31")])) is None
    assert to_predicate(sub == lit("13")) is None
    assert to_predicate(functions.starts_with(col("phone"), lit("1"))) is None
