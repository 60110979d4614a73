"""The metadata tables, one definition for SQLite and PostgreSQL.

Timestamps are stored as fixed-width ISO-8601 UTC strings (``2026-11-26T12:00:00.000000Z``):
they sort and compare the same way in every dialect. Rows that make up a version's content
(files, params, metrics, lineage) are written once, in the transaction that creates it.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = sa.String(36)
TS = sa.String(27)
DIGEST = sa.String(64)
KEY = sa.String(256)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    # A summary of the model's versions not deleted, kept by the writes that register and
    # delete them (migration 0011), so that listing models reads no versions.
    sa.Column("version_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("latest_number", sa.Integer),
)

environments = sa.Table(
    "environments",
    metadata,
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("ended_at", TS),
    sa.Column("hostname", sa.String(256), nullable=False),
    sa.Column("user", sa.String(256), nullable=False),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("environment_digest", DIGEST, sa.ForeignKey("environments.digest")),
    sa.Column("params", sa.Text, nullable=False, default="{}"),
    sa.Column("error", sa.Text),
    # The experiment an MLflow client filed the run under; a run started by modelreg's own
    # SDK is in the default experiment, "0" (migration 0009).
    sa.Column("experiment_id", sa.Integer, nullable=False, server_default=sa.text("0")),
    # Who made the run: "modelreg" (the SDK, embedded or over /api/v1) or "mlflow" (the
    # MLflow API, whose runs may be reopened and logged to after they end, as MLflow's are).
    sa.Column("origin", sa.String(16), nullable=False, server_default="modelreg"),
    # An MLflow client's delete_run hides a run from MLflow's searches; its record stays.
    sa.Column("deleted_at", TS),
    sa.Index(None, "experiment_id", "started_at"),
)

# -- what MLflow clients write (see server/mlflow): experiments, run and model tags, the
# files of runs and logged models, and logged models themselves. The bytes are blobs like
# any other, shared with versions; these tables only name them.

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(500), nullable=False, unique=True),
    sa.Column("lifecycle_stage", sa.String(16), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

experiment_tags = sa.Table(
    "experiment_tags",
    metadata,
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

run_tags = sa.Table(
    "run_tags",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index(None, "key", "value"),
)

# A logged model (MLflow 3's ``m-<hex>``): files logged under an experiment, usually by a
# run, from which registered versions are made.
logged_models = sa.Table(
    "logged_models",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id")),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("status_message", sa.Text, nullable=False, default=""),
    sa.Column("model_type", sa.String(500), nullable=False, default=""),
    sa.Column("params", sa.Text, nullable=False, default="{}"),
    sa.Column("tags", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index(None, "experiment_id", "created_at"),
    sa.Index(None, "run_id"),
)

# The logged models a run produced (MLflow's run outputs), with the step it was at.
logged_model_outputs = sa.Table(
    "logged_model_outputs",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("model_id", ID, sa.ForeignKey("logged_models.id"), primary_key=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Index(None, "model_id"),
)

# The files of a run or of a logged model (``owner_id`` is the one or the other), by path:
# the artifact store MLflow clients see, its bytes in the blob store.
artifact_files = sa.Table(
    "artifact_files",
    metadata,
    sa.Column("owner_id", ID, primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Index(None, "digest"),
)

model_tags = sa.Table(
    "model_tags",
    metadata,
    sa.Column("model_id", ID, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

metric_blocks = sa.Table(  # a run's points of one key from one batch (metric_blocks.py)
    "metric_blocks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("key", KEY, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("min_step", sa.Integer, nullable=False),
    sa.Column("max_step", sa.Integer, nullable=False),
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("low", sa.Float, nullable=False),
    sa.Column("high", sa.Float, nullable=False),
    sa.Column("min_ms", sa.BigInteger, nullable=False),
    sa.Column("max_ms", sa.BigInteger, nullable=False),
    sa.Column("ordered", sa.Boolean, nullable=False),  # in MLflow's order: time, step, value
    sa.Column("points", sa.LargeBinary, nullable=False),  # zstd(steps, values, times)
    sa.Index(None, "run_id", "key", "id"),
)

metric_levels = sa.Table(  # a block's points summed up FANOUT ** level at a time
    "metric_levels",
    metadata,
    sa.Column("block_id", sa.Integer, sa.ForeignKey("metric_blocks.id"), primary_key=True),
    sa.Column("level", sa.Integer, primary_key=True),
    sa.Column("entries", sa.LargeBinary, nullable=False),
)

metric_latest = sa.Table(  # each run's latest point per key, as MLflow counts it
    "metric_latest",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),  # points logged
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("timestamp", TS, nullable=False),
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("model_id", ID, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("manifest_digest", DIGEST, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("file_count", sa.Integer, nullable=False),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id")),
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("hostname", sa.String(256), nullable=False),
    sa.Column("environment_digest", DIGEST, sa.ForeignKey("environments.digest")),
    # A deleted version keeps its row, so its number is never given again and its record
    # stays readable in the audit log; its files are no longer referenced (gc frees them).
    sa.Column("deleted_at", TS),
    sa.Column("deleted_by", sa.String(256)),
    sa.Column("deleted_reason", sa.Text),
    sa.UniqueConstraint("model_id", "number"),
    sa.Index(None, "created_at"),
    # The few deleted versions, found without reading the rest.
    sa.Index(
        None,
        "deleted_at",
        sqlite_where=sa.text("deleted_at IS NOT NULL"),
        postgresql_where=sa.text("deleted_at IS NOT NULL"),
    ),
)

version_files = sa.Table(
    "version_files",
    metadata,
    sa.Column("version_id", ID, sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Index(None, "digest"),
)

# The logged model a version was registered from through MLflow's API (its code facts say so
# too): how a logged model finds its registrations by index. Written with the version.
version_logged_models = sa.Table(
    "version_logged_models",
    metadata,
    sa.Column("version_id", ID, sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("model_id", ID, nullable=False),  # may name a logged model of another server
    sa.Index(None, "model_id"),
)

version_params = sa.Table(
    "version_params",
    metadata,
    sa.Column("version_id", ID, sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("value_num", sa.Float),
    sa.Index(None, "key", "value_num"),
)

version_metrics = sa.Table(
    "version_metrics",
    metadata,
    sa.Column("version_id", ID, sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Index(None, "key", "value"),
)

# Each model's metrics in buckets of metric_summary.BUCKET consecutive version numbers, over
# its live versions, kept by the writes that register and delete them (migration 0012): the
# model page charts a model of 100,000 versions from these rows, not its 500,000 metrics.
version_metric_buckets = sa.Table(
    "version_metric_buckets",
    metadata,
    sa.Column("model_id", ID, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("bucket", sa.Integer, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("low", sa.Float, nullable=False),
    sa.Column("high", sa.Float, nullable=False),
    sa.Column("first_number", sa.Integer, nullable=False),
    sa.Column("first_at", TS, nullable=False),
)

version_tags = sa.Table(
    "version_tags",
    metadata,
    sa.Column("version_id", ID, sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index(None, "key"),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("model_id", ID, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("alias", sa.String(128), primary_key=True),
    sa.Column("version_id", ID, sa.ForeignKey("versions.id"), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False),
    sa.Index(None, "version_id"),
)

alias_events = sa.Table(
    "alias_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", ID, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("alias", sa.String(128), nullable=False),
    sa.Column("version_id", ID, sa.ForeignKey("versions.id")),
    sa.Column("at", TS, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Index(None, "model_id", "alias", "at"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("uri", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("file_count", sa.Integer, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("name", "digest"),
    sa.Index(None, "digest"),
)

version_datasets = sa.Table(
    "version_datasets",
    metadata,
    sa.Column("version_id", ID, sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id"), primary_key=True),
    sa.Column("role", sa.String(32), primary_key=True),
    sa.Index(None, "dataset_id"),
)

run_datasets = sa.Table(
    "run_datasets",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id"), primary_key=True),
    sa.Column("role", sa.String(32), primary_key=True),
    # The dataset input as an MLflow client logged it (JSON: its own name, digest, source,
    # schema, profile and tags), shown back to MLflow clients as they gave it.
    sa.Column("details", sa.Text),
)

version_parents = sa.Table(
    "version_parents",
    metadata,
    sa.Column("version_id", ID, sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("parent_id", ID, sa.ForeignKey("versions.id"), primary_key=True),
    sa.Index(None, "parent_id"),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("entity_type", sa.String(32), nullable=False),
    sa.Column("entity_id", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(300), nullable=False),
    sa.Column("before", sa.Text),
    sa.Column("after", sa.Text),
    sa.Column("prev_hash", DIGEST, nullable=False),
    sa.Column("hash", DIGEST, nullable=False),
    sa.Index(None, "entity_type", "entity_id"),
    sa.Index(None, "actor"),
)

# One row (id = 1): the sequence number and hash of the newest audit event. Every writer
# updates it, which serialises appends to the chain and lets verify notice a deleted tail.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("hash", DIGEST, nullable=False),
)

# One row (id = 1): how many transactions that may delete blobs or packs have run (gc's). A
# writer checks its blobs in the store before its transaction, and again inside it only when
# this moved meanwhile (migration 0014): its transaction waits on no S3 request otherwise.
blob_epoch = sa.Table(
    "blob_epoch",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("n", sa.BigInteger, nullable=False),
)

# One row (id = 1): the newest event a check of the chain found sound, so that the next check
# (audit verify without --full) walks only the events after it (migration 0013).
audit_checked = sa.Table(
    "audit_checked",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("hash", DIGEST, nullable=False),
    sa.Column("checked_at", TS, nullable=False),
    sa.Column("checked_by", sa.String(256), nullable=False),
)

# A dataset version withdrawn from use (an erasure request, a licence ending). Never deleted.
dataset_retirements = sa.Table(
    "dataset_retirements",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id"), nullable=False, unique=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("retired_at", TS, nullable=False),
    sa.Column("retired_by", sa.String(256), nullable=False),
)

# Status flags on versions, each with what raised it (e.g. data-retired <- a retirement).
version_flags = sa.Table(
    "version_flags",
    metadata,
    sa.Column("version_id", ID, sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("flag", sa.String(32), primary_key=True),
    sa.Column("source_id", ID, primary_key=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Index(None, "flag"),
)

evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("version_id", ID, sa.ForeignKey("versions.id"), nullable=False),
    sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Index(None, "dataset_id", "version_id"),
    sa.Index(None, "version_id"),
)

evaluation_metrics = sa.Table(
    "evaluation_metrics",
    metadata,
    sa.Column("evaluation_id", ID, sa.ForeignKey("evaluations.id"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)

# Ed25519 signatures over a version's canonical manifest (see signing.py).
version_signatures = sa.Table(
    "version_signatures",
    metadata,
    sa.Column("version_id", ID, sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("key_id", DIGEST, primary_key=True),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("document_digest", DIGEST, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
)

# Public keys the registry trusts to sign versions; key_id is the sha256 of the raw key.
trusted_keys = sa.Table(
    "trusted_keys",
    metadata,
    sa.Column("key_id", DIGEST, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("added_at", TS, nullable=False),
    sa.Column("added_by", sa.String(256), nullable=False),
)

# Promotion gates: the checks a version must pass before a protected alias points at it.
alias_policies = sa.Table(
    "alias_policies",
    metadata,
    sa.Column("model_id", ID, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("alias", sa.String(128), primary_key=True),
    sa.Column("policy", sa.Text, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("version_id", ID, sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("alias", sa.String(128), primary_key=True),
    sa.Column("approver", sa.String(256), primary_key=True),
    sa.Column("created_at", TS, nullable=False),
)

# Webhooks read the audit log as their event stream: cursor_seq is the last event handled, and
# a lease keeps two delivery workers from sending the same event at once (see webhooks.py).
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.String(256), nullable=False),
    sa.Column("actions", sa.Text, nullable=False),
    sa.Column("cursor_seq", sa.Integer, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("lease_id", ID),
    sa.Column("lease_until", TS),
)

# One row per attempt to deliver one event to one webhook.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("webhook_id", ID, sa.ForeignKey("webhooks.id"), nullable=False),
    sa.Column("event_seq", sa.Integer, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("at", TS, nullable=False),
    sa.Column("next_attempt_at", TS),
    sa.Index(None, "webhook_id", "id"),
)

# API tokens for the team server (see tokens.py). Only the sha256 of each secret is kept, and
# a revoked token stays, so that its name keeps meaning one token in the audit log.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", DIGEST, nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("revoked_at", TS),
    sa.Column("revoked_by", sa.String(256)),
    sa.Column("last_used_at", TS),
    sa.Index(None, "token_hash", unique=True),
)

# The web UI's sign-ins: the cookie holds a session secret, never the token itself.
ui_sessions = sa.Table(
    "ui_sessions",
    metadata,
    sa.Column("session_hash", DIGEST, primary_key=True),
    sa.Column("token_id", ID, sa.ForeignKey("api_tokens.id"), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Index(None, "token_id"),
)

# Large files cut into chunks (chunk_store.py). A pack is an object of the blob store holding
# chunks back to back, under a random name; a chunk is named by the BLAKE3 hash of its bytes
# (the XOR with a base file's bytes, for a delta piece); a chunked file lists its pieces in
# order and names the base file its delta pieces need. ``modified_at`` is what gc's grace
# period reads, as a blob's mtime is.
chunk_packs = sa.Table(
    "chunk_packs",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", TS, nullable=False),
)

chunks = sa.Table(
    "chunks",
    metadata,
    sa.Column("id", sa.LargeBinary(32), primary_key=True),
    sa.Column("pack", sa.String(32), nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("length", sa.Integer, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("codec", sa.SmallInteger, nullable=False),
    sa.Index(None, "pack"),
)

chunked_files = sa.Table(
    "chunked_files",
    metadata,
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("base", DIGEST),
    sa.Column("pieces", sa.LargeBinary, nullable=False),
    sa.Column("modified_at", TS, nullable=False),
    sa.Index(None, "base"),
)
