"""Review requests answered, and the declared tax reconciled with the computed one.

- 环境保护税法 第二十条: the tax office sends a review request (复核提请) when a declaration
  is abnormal or late; the ecology-environment side answers with a review opinion
  (复核意见) within 15 days of receiving it (:func:`exchange_schema.review_opinion_due`).
  The request's ``sent_on`` (提请日期) is taken as the day of receipt (``received_on``):
  the request arrives through the sharing platform the day it is sent, and the day stays
  the same however often the request is re-imported.
- The reconciliation sets an enterprise's declarations of a month (纳税申报 records
  imported from the tax side) beside the month's tax computed from its monitoring data
  (:func:`ecohub.permits.tax.month_tax`), pollutant by pollutant: quantity and tax
  declared and computed, the differences, and a finding — 一致 within the tolerances
  (``quantity_tolerance`` of the computed quantity, ``tax_tolerance_yuan`` of tax),
  差异 beyond them, 未申报 (computed as taxable, not declared), 未核算 (declared, not
  computed: the platform holds no data for it).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select

from ecohub.clock import local_today
from ecohub.permits import exchange_schema as schema
from ecohub.permits.exchange import ExchangeError, ImportReport, store
from ecohub.permits.tables import exchange_records
from ecohub.permits.tax import month_tax
from ecohub.registry.service import audit_row


def answer_review(
    engine: Engine,
    request_no: str,
    *,
    conclusion: str,
    opinion: str,
    actor: str,
    reviewed_quantity: Decimal | None = None,
    pollutant: str | None = None,
    on: dt.date | None = None,
) -> dict[str, Any]:
    """Answer a stored review request with a review opinion (one more line of it)."""
    replied = on or local_today()
    with engine.begin() as connection:
        request = connection.execute(
            select(exchange_records.c.payload).where(
                exchange_records.c.kind == schema.Kind.REVIEW_REQUEST.value,
                exchange_records.c.record_key == request_no,
            )
        ).first()
        if request is None:
            raise ExchangeError(f"no review request {request_no!r}")
        line = (
            1
            + connection.execute(
                select(func.count())
                .select_from(exchange_records)
                .where(
                    exchange_records.c.kind == schema.Kind.REVIEW_OPINION.value,
                    exchange_records.c.record_key.like(f"{request_no}|%"),
                )
            ).scalar_one()
        )
        received = dt.date.fromisoformat(request.payload["sent_on"])
        raw = {
            "request_no": request_no,
            "line": line,
            "uscc": request.payload["uscc"],
            "received_on": received.isoformat(),
            "replied_on": replied.isoformat(),
            "conclusion": conclusion,
            "opinion": opinion,
            "pollutant": pollutant or request.payload.get("pollutant"),
            "tax_source_no": request.payload.get("tax_source_no"),
            "reviewed_quantity": None if reviewed_quantity is None else str(reviewed_quantity),
        }
        try:
            record = schema.validate(
                schema.Kind.REVIEW_OPINION, {k: v for k, v in raw.items() if v is not None}
            )
        except ValueError as error:
            raise ExchangeError(str(error)) from None
        store(
            connection,
            schema.Kind.REVIEW_OPINION.value,
            record,
            source=actor,
            report=ImportReport(),
        )
        audit_row(
            connection,
            actor,
            "create",
            "exchange_records",
            f"review_opinion {request_no}/{line}",
            None,
            {"conclusion": conclusion},
        )
    due = schema.review_opinion_due(received)
    return {
        **schema.to_json(schema.Kind.REVIEW_OPINION, record),
        "due": due.isoformat(),
        "late": replied > due,
    }


def _declared(engine: Engine, uscc: str, month: str) -> dict[str, dict[str, Decimal]]:
    totals: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: {"quantity": Decimal(0), "tax": Decimal(0)}
    )
    with engine.connect() as connection:
        rows = connection.execute(
            select(exchange_records.c.payload).where(
                exchange_records.c.kind == schema.Kind.DECLARATION.value,
                exchange_records.c.record_key.like(f"{uscc}|{month}|%"),
            )
        )
        for (payload,) in rows:
            entry = totals[payload["pollutant"]]
            entry["quantity"] += Decimal(payload["quantity"])
            entry["tax"] += Decimal(payload["tax_payable"])
    return totals


def _finding(
    declared: dict[str, Decimal] | None,
    computed: dict[str, float] | None,
    quantity_tolerance: float,
    tax_tolerance_yuan: float,
) -> str:
    if declared is None:
        return "未申报"
    if computed is None:
        return "未核算"
    quantity_gap = abs(float(declared["quantity"]) - computed["quantity"])
    tax_gap = abs(float(declared["tax"]) - computed["tax"])
    within = (
        quantity_gap <= quantity_tolerance * max(computed["quantity"], 1e-9)
        and tax_gap <= tax_tolerance_yuan
    )
    return "一致" if within else "差异"


def reconcile(
    engine: Engine,
    uscc: str,
    year: int,
    month: int,
    *,
    quantity_tolerance: float = 0.01,
    tax_tolerance_yuan: float = 1.0,
) -> dict[str, Any]:
    """The enterprise's declared tax of a month against the computed one."""
    label = f"{year}-{month:02d}"
    declared = _declared(engine, uscc, label)
    found = month_tax(engine, uscc, year, month)
    computed: dict[str, dict[str, float]] = defaultdict(lambda: {"quantity": 0.0, "tax": 0.0})
    for outlet in found["outlets"]:
        for step in outlet["steps"]:
            entry = computed[step["pollutant"]]
            entry["quantity"] += float(step["quantity"])
            entry["tax"] += float(step["tax"])
    rows = []
    for pollutant in sorted(set(declared) | set(computed)):
        mine, theirs = computed.get(pollutant), declared.get(pollutant)
        rows.append(
            {
                "pollutant": pollutant,
                "declared_quantity_kg": None if theirs is None else float(theirs["quantity"]),
                "computed_quantity_kg": None if mine is None else round(mine["quantity"], 4),
                "declared_tax": None if theirs is None else float(theirs["tax"]),
                "computed_tax": None if mine is None else round(mine["tax"], 2),
                "tax_difference": None
                if mine is None or theirs is None
                else round(float(theirs["tax"]) - mine["tax"], 2),
                "finding": _finding(theirs, mine, quantity_tolerance, tax_tolerance_yuan),
            }
        )
    return {
        "uscc": uscc,
        "month": label,
        "declared_tax": round(float(sum((d["tax"] for d in declared.values()), Decimal(0))), 2),
        "computed_tax": found["tax"],
        "tolerances": {"quantity": quantity_tolerance, "tax_yuan": tax_tolerance_yuan},
        "rows": rows,
        "consistent": all(row["finding"] == "一致" for row in rows),
    }
