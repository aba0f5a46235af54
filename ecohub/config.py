"""The platform's one settings object, read from ``ECOHUB_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_VAR_DIR = Path("var")


class Settings(BaseSettings):
    """Settings of one EcoHub installation.

    ``database_url`` defaults to an SQLite file under ``./var/`` (WAL mode). A
    ``postgresql+psycopg://`` URL switches the whole platform to PostgreSQL; nothing
    else changes for the user.
    """

    model_config = SettingsConfigDict(env_prefix="ECOHUB_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_VAR_DIR / 'ecohub.sqlite3'}",
        description="SQLAlchemy URL of the store: sqlite:///path or postgresql+psycopg://...",
    )
    var_dir: str = Field(
        default=str(DEFAULT_VAR_DIR),
        description="Folder of the installation's working files: the demo's credentials "
        "(demo-credentials.txt); the default store and journal live there too.",
    )
    actor: str = Field(
        default="cli",
        description="Name recorded in the audit log for changes made by this process.",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    hj212_host: str = Field(default="0.0.0.0", description="Address the HJ 212 gateway binds.")
    hj212_port: int = Field(default=9000, description="TCP port of the HJ 212 gateway.")
    hj212_idle_timeout: float = Field(
        default=600.0, description="Seconds of silence after which a logger connection is closed."
    )
    timezone: str = Field(
        default="Asia/Shanghai",
        description="Time zone of the calendar days that daily values and rates follow.",
    )
    supervision_risk_weights: str | None = Field(
        default=None,
        description="CSV of the risk score's weights and caps overriding the shipped table "
        "(ecohub/supervision/data/risk_weights.csv).",
    )
    complaints_key: str | None = Field(
        default=None,
        description="Key (Fernet, url-safe base64 of 32 bytes) that encrypts complainants' "
        "contact details and keys the query codes' digests. Unset: a key file "
        "complaints.key is made in var_dir on first use (mode 600); production sets it "
        "from a secret store. Losing it makes stored contacts unreadable.",
    )
    complaints_link_radius_m: float | None = Field(
        default=None,
        gt=0,
        description="Complaints nearer than this (metres) may be linked into one event "
        "(unset: the linking module's default, 1250).",
    )
    complaints_link_window_hours: float | None = Field(
        default=None,
        gt=0,
        description="Complaints nearer in time than this (hours) may be linked (unset: 48).",
    )
    complaints_link_similarity: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Least text similarity (0..1) of linked complaints (unset: 0.08; 0: "
        "link on medium, place and time alone).",
    )
    complaints_per_client_hour: int = Field(
        default=10,
        gt=0,
        description="Complaints one address may file on the public form per hour.",
    )
    complaints_query_attempts: int = Field(
        default=5,
        gt=0,
        description="Wrong query codes per ticket (and per address) in 15 minutes before "
        "the self-query refuses further tries.",
    )
    complaints_deadlines: str | None = Field(
        default=None,
        description="CSV of handling deadlines overriding the shipped table "
        "(ecohub/complaints/data/deadlines.csv).",
    )
    qc_thresholds: str | None = Field(
        default=None,
        description="CSV of quality-control thresholds overriding the shipped defaults.",
    )
    rollup_delay: float = Field(
        default=2.0,
        ge=0,
        description="Seconds the gateway's and subscriber's writer may defer hourly and "
        "daily rollups, recomputing each touched hour once (0: in every batch).",
    )
    current_hour_refresh: float = Field(
        default=300.0,
        ge=0,
        description="Seconds between recomputations of the hour still in progress by such a "
        "deferring writer; earlier hours are recomputed within the rollup delay.",
    )
    journal_dir: str = Field(
        default=str(DEFAULT_VAR_DIR / "journal"),
        description="Directory where `ecohub serve` journals accepted batches, so that "
        "loggers and other senders are answered before the store commits them (empty: "
        "no journal, answers wait for the commit). One per running gateway, on local disk.",
    )
    journal_backlog_rows: int = Field(
        default=100_000,
        ge=0,
        description="Rows the store may be behind the journal before answers wait for "
        "commits again.",
    )
    writer_niceness: int = Field(
        default=0,
        ge=0,
        le=19,
        description="Lower the writer process's CPU priority by this much (nice): with a "
        "journal, answers then come sooner in bursts, and the store falls behind more.",
    )
    bus_url: str = Field(
        default="",
        description="NATS server(s) of the ingestion bus, e.g. nats://10.0.0.5:4222 (comma "
        "for several). Empty: the single-process path with the local journal. Set: the "
        "doors answer once JetStream has the batch and `ecohub bus writer` processes "
        "store it (docs/bus.md).",
    )
    bus_stream: str = Field(
        default="ECOHUB_OBS",
        description="JetStream stream of the bus; its subjects are <stream prefix>.<n>.",
    )
    bus_partitions: int = Field(
        default=8,
        ge=1,
        le=1024,
        description="Partitions of the points on the bus (point id modulo this); each is "
        "written by one writer at a time. Fixed once the stream holds data.",
    )
    bus_ack_wait: float = Field(
        default=30.0,
        gt=0,
        description="Seconds before JetStream delivers again a batch a writer took and did "
        "not acknowledge (a killed writer's batches wait this long).",
    )
    bus_max_bytes: int = Field(
        default=1 << 30,
        gt=0,
        description="Bytes the bus's stream may hold unwritten; beyond it publishes fail "
        "and senders are not answered (they send again).",
    )
    mqtt_url: str = Field(
        default="mqtt://127.0.0.1:1883", description="MQTT broker to subscribe to."
    )
    mqtt_topic: str = Field(
        default="ecohub/measurements/#", description="Topic filter of measurement messages."
    )
    api_host: str = Field(default="127.0.0.1", description="Address the HTTP API binds.")
    api_port: int = Field(default=8000, description="TCP port of the HTTP API.")
    alarms_enabled: bool = Field(
        default=True, description="Evaluate the alarm rules as data arrives."
    )
    offline_multiple: float = Field(
        default=3.0,
        gt=1,
        description="A point is offline when silent longer than this many reporting intervals.",
    )
    alarm_sweep_seconds: float = Field(
        default=60.0, gt=0, description="How often the offline sweep and notifier run."
    )
    aqi_alarm_threshold: int = Field(
        default=200,
        ge=0,
        le=500,
        description="A station's hourly AQI above this raises an alarm (200: heavy pollution).",
    )
    anomaly_hours: str = Field(
        default="device_flag=2,flat_line=1,zero_flow=1,spike=2",
        description="Hours each quality-control anomaly must last to raise an alarm.",
    )
    ambient_grade: int = Field(
        default=2, ge=1, le=2, description="GB 3095-2012 grade of the ambient limits (1 or 2)."
    )
    smtp_host: str | None = Field(default=None, description="SMTP server for e-mail alarms.")
    smtp_port: int = Field(default=25, description="SMTP port.")
    smtp_user: str | None = Field(default=None, description="SMTP login, if the server needs one.")
    smtp_password: str | None = Field(default=None, description="SMTP password.")
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP link with STARTTLS.")
    smtp_sender: str = Field(
        default="ecohub@localhost", description="From address of alarm e-mails."
    )
    webhook_timeout: float = Field(default=10.0, gt=0, description="Seconds per webhook call.")
    notify_max_attempts: int = Field(
        default=8, ge=1, description="Deliveries tried before a notification is marked failed."
    )
    notify_backoff_seconds: float = Field(
        default=30.0, gt=0, description="First retry delay; doubled after each failure."
    )
    api_rate_limit: int = Field(
        default=600,
        ge=1,
        description="Requests a minute per API key or signed-in user (a key may set its own).",
    )
    cookie_secure: bool = Field(
        default=True,
        description="Send the portal's session cookie over HTTPS only (browsers also allow "
        "http://localhost). Turn off only behind a TLS-terminating proxy that speaks plain HTTP.",
    )
    login_attempts: int = Field(
        default=10, ge=1, description="Failed sign-ins per user name and address in 15 minutes."
    )
    login_attempts_per_name: int = Field(
        default=50,
        ge=1,
        description="Failed sign-ins for one user name from all addresses in 15 minutes, after "
        "which that name is locked for the rest of the window.",
    )
    login_attempts_global: int = Field(
        default=500,
        ge=1,
        description="Failed sign-ins of all names from all addresses in 15 minutes, after which "
        "every sign-in waits for the rest of the window.",
    )
    api_anonymous_rate_limit: int = Field(
        default=300,
        ge=0,
        description="Requests a minute per client address without a key or session (0: no limit).",
    )
    api_max_connections: int = Field(
        default=1000,
        ge=1,
        description="HTTP connections and requests the API serves at once; beyond them it "
        "answers 503 (uvicorn's limit_concurrency).",
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="Comma-separated addresses of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are trusted (uvicorn's forwarded_allow_ips); empty: none, "
        "the client address is the TCP peer's.",
    )
    limits_redis_url: str = Field(
        default="",
        description="redis://host:port/db holding the rate-limit and sign-in counters shared "
        "by every process of the installation; empty, or Redis not answering: the store's "
        "database holds them (change_counters).",
    )
    hj212_max_connections: int = Field(
        default=10_000,
        ge=1,
        description="Logger connections the gateway holds at once; lowered at start to the "
        "process's file limit less hj212_fd_headroom and api_max_connections.",
    )
    hj212_max_connections_per_address: int = Field(
        default=1_500,
        ge=1,
        description="Logger connections from one sender address at once (loggers behind one "
        "carrier NAT share an address).",
    )
    hj212_fd_headroom: int = Field(
        default=1024,
        ge=64,
        description="File descriptors kept free for the database, the journal, logs and the "
        "writer when the gateway's connection cap is set from the file limit.",
    )
    hj212_first_packet_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a new connection may go without a packet from a registered point "
        "before it is closed.",
    )
    hj212_quarantine_raw_bytes: int = Field(
        default=4096,
        ge=64,
        description="Raw bytes kept in the quarantine per rejected burst (consecutive "
        "rejections of one reason on one connection); the rest is counted, with its SHA-256.",
    )
    hj212_junk_close_bytes: int = Field(
        default=16 << 20,
        ge=1024,
        description="Rejected bytes one connection may send since its last accepted packet "
        "before it is closed.",
    )
    hj212_quarantine_quota_rows: int = Field(
        default=1_000,
        ge=1,
        description="Quarantine rows stored per sender address and hour; further rejections "
        "are counted in one summary row per hour.",
    )
    hj212_quarantine_quota_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Raw bytes stored in the quarantine per sender address and hour.",
    )
    hj212_auth_delay_after: int = Field(
        default=3,
        ge=1,
        description="Wrong passwords (or unknown MNs) after which a connection is paused "
        "before each further packet, doubling from 0.5 s.",
    )
    hj212_auth_block_after: int = Field(
        default=10,
        ge=2,
        description="Wrong passwords for one MN, from one address without a logger signed "
        "in, or on one connection, within hj212_auth_window, after which the MN or address "
        "is blocked and an alarm raised.",
    )
    hj212_auth_window: float = Field(
        default=600.0, gt=0, description="Seconds over which wrong passwords are counted."
    )
    hj212_auth_block_seconds: float = Field(
        default=900.0,
        gt=0,
        description="Seconds a blocked MN or address stays blocked (addresses whose logger "
        "sent the MN's right password in the last day are not blocked for it).",
    )
    upload_max_in_progress: int = Field(
        default=2,
        ge=1,
        description="HTTP measurement uploads read and parsed at once (off the event loop); "
        "further uploads wait up to upload_queue_seconds, then get 503 with Retry-After.",
    )
    upload_queue_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Seconds an upload may wait for its turn before the API answers 503.",
    )
    import_chunk_records: int = Field(
        default=10_000,
        ge=1,
        description="Registry records imported in one transaction; a longer file is imported "
        "in chunks of this many, each committed, and the command says which were stored.",
    )
    store_busy_retries: int = Field(
        default=3,
        ge=1,
        description="Attempts an import makes when the store is busy (locked) before it stops "
        "with an error; each waits the busy timeout.",
    )
    store_busy_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds an import's transaction waits for the store's write lock "
        "(SQLite busy timeout, PostgreSQL lock_timeout) per attempt.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once from the environment)."""
    return Settings()
