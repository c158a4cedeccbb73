"""Cameras of the registry with their health, their editable settings and their newest frame.

Settings (zones and rules, see :mod:`api.camera_config`) are read by anyone who may see the camera,
edited by ops and admins; each save is a new version that running detectors apply without a restart.
The newest frame is footage, so ops may not fetch it (like incidents and evidence).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Response
from sqlalchemy import select

from api import camera_config
from api.access import AnyoneDep, CameraEditorDep, Principal, ViewerDep
from api.camera_config import CameraSettingsOut, CameraSettingsPut
from api.deps import ContextDep, SessionDep, SettingsDep
from api.models import CameraConfigRow, CameraRow, CameraStatusRow
from api.problems import Problem, not_found
from api.schemas import CameraHealthOut, CameraOut
from cctv.config import Camera, Settings

router = APIRouter(prefix="/api/v1/cameras", tags=["cameras"])

STALE_AFTER_PERIODS = 3


def camera_out(
    row: CameraRow,
    status: CameraStatusRow | None,
    stale_after: timedelta,
    settings: CameraConfigRow | None,
    now: datetime,
) -> CameraOut:
    health, lag_s, online = None, None, False
    if status is not None:
        stale = now - status.at > stale_after
        health = CameraHealthOut(
            state=status.state,
            stale=stale,
            at=status.at,
            fps=status.fps,
            last_frame_at=status.last_frame_at,
            frames_sent=status.frames_sent,
            frames_dropped=status.frames_dropped,
            reconnects=status.reconnects,
            error=status.error,
            worker=status.worker,
        )
        online = status.state == "online" and not stale
        if status.last_frame_at is not None:
            lag_s = max(0.0, (now - status.last_frame_at).total_seconds())
    return CameraOut(
        id=row.id,
        name=row.name,
        location=row.location,
        source_scheme=row.source_scheme,
        fps=row.fps,
        enabled=row.enabled,
        zones=settings.config["zones"] if settings is not None else row.zones,
        health=health,
        settings_version=settings.version if settings is not None else 0,
        lag_s=lag_s,
        online=online,
    )


def _stale_after(settings: Settings) -> timedelta:
    return timedelta(seconds=STALE_AFTER_PERIODS * settings.api.camera_heartbeat_s)


@router.get("", response_model=list[CameraOut], summary="Cameras of the registry with their health")
def list_cameras(session: SessionDep, settings: SettingsDep, caller: AnyoneDep) -> list[CameraOut]:
    rows = session.execute(
        select(CameraRow, CameraStatusRow)
        .outerjoin(CameraStatusRow, CameraStatusRow.camera_id == CameraRow.id)
        .where(CameraRow.in_registry.is_(True), caller.camera_clause(CameraRow.id))
        .order_by(CameraRow.id)
    ).all()
    versions = camera_config.newest_rows(session, [camera.id for camera, _ in rows])
    now = datetime.now(UTC)
    return [
        camera_out(camera, status, _stale_after(settings), versions.get(camera.id), now)
        for camera, status in rows
    ]


@router.get("/{camera_id}", response_model=CameraOut, summary="One camera with its health")
def get_camera(session: SessionDep, settings: SettingsDep, caller: AnyoneDep, camera_id: str) -> CameraOut:
    camera = session.get(CameraRow, camera_id)
    if camera is None or not caller.may_see(camera_id):
        raise not_found("camera", camera_id)
    status = session.get(CameraStatusRow, camera_id)
    version = camera_config.newest_rows(session, [camera_id]).get(camera_id)
    return camera_out(camera, status, _stale_after(settings), version, datetime.now(UTC))


def _registry_camera(context: ContextDep, caller: Principal, camera_id: str) -> Camera:
    """A camera of the registry file the caller may see (settings exist only for those), else 404."""
    camera = context.registry.by_id().get(camera_id)
    if camera is None or not caller.may_see(camera_id):
        raise not_found("camera", camera_id)
    return camera


@router.get(
    "/{camera_id}/settings",
    response_model=CameraSettingsOut,
    summary="The camera's zones and rule settings in force (version 0: the registry file's)",
)
def get_settings(
    session: SessionDep, context: ContextDep, caller: AnyoneDep, camera_id: str
) -> CameraSettingsOut:
    return camera_config.current(session, _registry_camera(context, caller, camera_id))


@router.get(
    "/{camera_id}/settings/history",
    response_model=list[CameraSettingsOut],
    summary="Every saved version of the camera's settings, newest first, ending with the file's (0)",
)
def get_settings_history(
    session: SessionDep, context: ContextDep, caller: CameraEditorDep, camera_id: str
) -> list[CameraSettingsOut]:
    return camera_config.history(session, _registry_camera(context, caller, camera_id))


@router.put(
    "/{camera_id}/settings",
    response_model=CameraSettingsOut,
    summary="Save new zones and rule settings as the next version; running detectors apply it",
    responses={
        409: {"description": "expected_version is not the current version (problem details)"},
        422: {"description": "invalid settings; errors[].loc names the field (problem details)"},
        503: {"description": "saved, but not yet published to the detectors (problem details)"},
    },
)
def put_settings(
    session: SessionDep, context: ContextDep, caller: CameraEditorDep, camera_id: str, body: CameraSettingsPut
) -> CameraSettingsOut:
    camera = _registry_camera(context, caller, camera_id)
    row = camera_config.save(session, camera, body, caller.name, context.clock())
    out = camera_config.settings_out(camera, row)
    try:
        camera_config.publish(context.settings.kafka, [camera_config.message_for(row)])
    except Exception as exc:
        raise Problem(
            503,
            "Settings saved but not published",
            f"version {row.version} is stored but the detectors were not told ({exc}); it is published "
            "with the camera's next save or when the API restarts",
            extra={"version": row.version},
        ) from exc
    return out


@router.get(
    "/{camera_id}/frame",
    summary="The camera's newest frame (JPEG as ingested); draw zones from its settings over it",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the frame; X-Capture-Ts says when"},
        404: {"description": "no recent frame of the camera in the frames topic (problem details)"},
    },
)
def get_frame(context: ContextDep, caller: ViewerDep, camera_id: str) -> Response:
    camera = _registry_camera(context, caller, camera_id)
    frame = camera_config.newest_frame(context.settings.kafka, camera.id)
    if frame is None:
        raise not_found("recent frame of camera", camera_id)
    headers = {
        "Cache-Control": "no-store",
        "X-Capture-Ts": frame.capture_ts.isoformat(),
        "X-Frame-Seq": str(frame.seq),
    }
    return Response(frame.image, media_type="image/jpeg", headers=headers)
