"""Cameras of the registry with their health from the newest heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from sqlalchemy import select

from api.deps import SessionDep, SettingsDep
from api.models import CameraRow, CameraStatusRow
from api.problems import not_found
from api.schemas import CameraHealthOut, CameraOut

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])

STALE_AFTER_PERIODS = 3


def camera_out(row: CameraRow, status: CameraStatusRow | None, stale_after: timedelta) -> CameraOut:
    health = None
    if status is not None:
        health = CameraHealthOut(
            state=status.state,
            stale=datetime.now(UTC) - status.at > stale_after,
            at=status.at,
            fps=status.fps,
            last_frame_at=status.last_frame_at,
            frames_sent=status.frames_sent,
            frames_dropped=status.frames_dropped,
            reconnects=status.reconnects,
            error=status.error,
            worker=status.worker,
        )
    return CameraOut(
        id=row.id,
        name=row.name,
        location=row.location,
        source_scheme=row.source_scheme,
        fps=row.fps,
        enabled=row.enabled,
        zones=row.zones,
        health=health,
    )


@router.get("", response_model=list[CameraOut], summary="Cameras of the registry with their health")
def list_cameras(session: SessionDep, settings: SettingsDep) -> list[CameraOut]:
    stale_after = timedelta(seconds=STALE_AFTER_PERIODS * settings.api.camera_heartbeat_s)
    rows = session.execute(
        select(CameraRow, CameraStatusRow)
        .outerjoin(CameraStatusRow, CameraStatusRow.camera_id == CameraRow.id)
        .where(CameraRow.in_registry.is_(True))
        .order_by(CameraRow.id)
    ).all()
    return [camera_out(camera, status, stale_after) for camera, status in rows]


@router.get("/{camera_id}", response_model=CameraOut, summary="One camera with its health")
def get_camera(session: SessionDep, settings: SettingsDep, camera_id: str) -> CameraOut:
    camera = session.get(CameraRow, camera_id)
    if camera is None:
        raise not_found("camera", camera_id)
    status = session.get(CameraStatusRow, camera_id)
    return camera_out(
        camera, status, timedelta(seconds=STALE_AFTER_PERIODS * settings.api.camera_heartbeat_s)
    )
