"""The agency's page of the ingestion path: where accepted batches wait before the store —
the local journal of ``ecohub serve`` (segments, batches waiting) or, with the bus, the
NATS JetStream stream and the backlog of each writer's consumer (docs/bus.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from ecohub.ingest.bus import bus_config, bus_status
from ecohub.ingest.journal import inspect_journal
from ecohub.web.i18n import register
from ecohub.web.render import agency_user, render

router = APIRouter(include_in_schema=False)
register(
    {
        "ig_nav": ("接入状态", "Ingest"),
        "ig_omitted": ("另有 %s 个分区未列出。", "%s more partitions not shown."),
        "ig_title": ("数据接入状态", "The ingestion path"),
        "ig_journal": ("本地日志（应答先于入库）", "Local journal (answered before the store)"),
        "ig_no_journal": (
            "未配置本地日志：应答等待入库提交。",
            "No journal: answers wait for the commit.",
        ),
        "ig_segments": ("段文件", "Segment files"),
        "ig_bytes": ("字节", "Bytes"),
        "ig_committed": ("已入库批次至", "Committed through batch"),
        "ig_waiting": ("待入库批次", "Batches waiting for the store"),
        "ig_in_use": ("网关正在使用", "In use by a running gateway"),
        "ig_bus": ("消息总线（NATS JetStream）", "Bus (NATS JetStream)"),
        "ig_no_bus": (
            "未启用消息总线（ECOHUB_BUS_URL 为空）。",
            "No bus (ECOHUB_BUS_URL is empty).",
        ),
        "ig_stream": ("流", "Stream"),
        "ig_absent": (
            "流 %s 尚未创建（尚无网关发布数据）。",
            "Stream %s not created yet (no gateway has published).",
        ),
        "ig_messages": ("消息数", "Messages"),
        "ig_consumer": ("写入者消费者", "Writer consumer"),
        "ig_partition": ("分区", "Partition"),
        "ig_backlog": ("积压", "Backlog"),
        "ig_redelivered": ("重投", "Redelivered"),
        "ig_missing": ("尚未创建（无写入者启动过）", "not created yet (no writer has started)"),
        "ig_error": ("无法读取：%s", "Could not read: %s"),
    },
    {},
)


def _journal(folder: str) -> dict[str, Any] | None:
    if not folder or not Path(folder).exists():
        return None
    status = inspect_journal(folder)
    return {
        "directory": str(status.directory),
        "in_use": status.in_use,
        "segments": status.segments,
        "bytes": status.bytes,
        "committed": status.committed,
        "waiting": len(status.pending),
    }


@router.get("/agency/ingest")
async def ingest_page(request: Request) -> Response:
    user = agency_user(request)
    if isinstance(user, Response):
        return user
    settings = request.app.state.settings
    config = bus_config(settings)
    bus = await run_in_threadpool(bus_status, config) if config is not None else None
    journal = await run_in_threadpool(_journal, settings.journal_dir)
    return render(request, "ingest/status.html", journal=journal, bus=bus)
