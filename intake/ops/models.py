"""JobRun: one run of a periodic job (the digest, the retention purge, the audit check, ...)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from intake.db_types import UTCDateTime, coded_enum, utcnow
from intake.extensions import Model, db


class JobStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABANDONED = "abandoned"  # its process died while running (found by the next run of the job)


class JobRun(Model):
    """Who ran which job when, and how it ended. ``detail`` is an exit code or an exception's class,
    never its message (which could quote data)."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    status: Mapped[JobStatus] = mapped_column(coded_enum(JobStatus, "job_status", 16), default=JobStatus.RUNNING)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        db.Index("ix_job_runs_job_started", "job", "started_at"),
        db.Index("ix_job_runs_status_started", "status", "started_at"),
    )

    def __repr__(self) -> str:
        return f"<JobRun {self.id} {self.job} {self.status}>"
