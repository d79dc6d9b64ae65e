"""The RFC 9457 problem document every error response carries (``application/problem+json``).

Only documents the shape :func:`app.errors.problem_response` writes; the handlers build the
bodies themselves. Nothing in a problem repeats the client's input.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ProblemField(BaseModel):
    """One broken rule, located but without the offending value."""

    field: str = Field(
        description="Where the problem is: `body.candles[3].high`, `query.limit`, "
        "`path.symbol`; for an ingested batch a candle field, `row`, `header`, `body` or "
        "`timeframe`."
    )
    message: str = Field(description="Which rule failed.")
    row: int | None = Field(
        default=None,
        description="Ingested batches only: the 0-based index in a JSON body, the 1-based line "
        "of a CSV body; null for a problem of the whole body.",
    )


class Problem(BaseModel):
    type: str = Field(
        description="A URI naming the kind of problem; `about:blank` when the status says all.",
        json_schema_extra={"format": "uri"},
    )
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(ge=400, le=599, description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request.")
    errors: list[ProblemField] = Field(
        default_factory=list,
        description="Present when fields are at fault: each names one, and the rule it broke.",
    )
