"""The rules' settings, per zone and per camera: what each threshold means and which values are refused.

Part of the camera registry (:mod:`cctv.config`): a zone's polygon and rules,
tamper and classifier settings. The same models validate the YAML file and the
web app's edits (``PUT /api/v1/cameras/{id}/settings``).
"""

from __future__ import annotations

from datetime import time
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]


class ActiveHours(Strict):
    """A daily window in Europe/London local time; may wrap past midnight (22:00-06:00)."""

    start: time = Field(description="local start time, HH:MM")
    end: time = Field(description="local end time, HH:MM")


class LoiteringRuleConfig(Strict):
    dwell_s: float = Field(default=60.0, gt=0, description="total seconds in the zone before an alert")
    entry_frames: int = Field(
        default=3, ge=1, description="consecutive frames inside before a person counts as entered"
    )
    reentry_grace_s: float = Field(
        default=15.0, ge=0, description="a lost track that reappears nearby within this keeps its clock"
    )
    reentry_radius: float = Field(
        default=0.1, gt=0, le=1, description="how near (fraction of frame diagonal) a reappearance must be"
    )
    cooldown_s: float = Field(default=300.0, ge=0, description="no second alert for the same person and zone")
    group_size: int | None = Field(
        default=None, ge=2, description="also alert when this many people are past the dwell time together"
    )
    active_hours: ActiveHours | None = Field(default=None, description="alert only inside these hours")
    max_incident_s: float = Field(
        default=600.0, gt=0, description="close an incident after this long so its evidence gets sealed"
    )


class TamperRuleConfig(Strict):
    """Camera tamper: lens covered, defocused, sprayed, or the camera moved (see detector.tamper)."""

    hold_s: float = Field(default=10.0, gt=0, description="the view must stay tampered this long to alert")
    warmup_s: float = Field(
        default=5.0,
        gt=0,
        description="after a start, a resolution change or an accepted new view: learn the normal view "
        "this long before judging",
    )
    learn_tau_s: float = Field(
        default=60.0,
        gt=0,
        description="time constant of the normal view's slow adaptation while the view is normal "
        "(dusk, weather); a tampered view is never learned",
    )
    detail_lost_ratio: float = Field(
        default=0.4,
        gt=0,
        lt=1,
        description="a grid cell has lost detail when its brightness-normalised sharpness falls below "
        "this fraction of normal",
    )
    detail_lost_fraction: float = Field(
        default=0.7,
        gt=0,
        le=1,
        description="covered/defocused/sprayed when at least this fraction of the textured cells lost detail",
    )
    moved_correlation: float = Field(
        default=0.4,
        ge=-1,
        lt=1,
        description="a grid cell no longer matches the normal view when its edge-structure correlation "
        "with it is below this",
    )
    moved_fraction: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="camera moved when at least this fraction of the textured cells no longer match "
        "while detail is normal",
    )
    covered_brightness: float = Field(
        default=0.3,
        gt=0,
        lt=1,
        description="detail lost and brightness below this fraction of normal: lens covered",
    )
    restore_s: float = Field(
        default=5.0, gt=0, description="close an incident once the view has been normal this long"
    )
    cooldown_s: float = Field(
        default=60.0, ge=0, description="no new tamper alert this soon after one closed"
    )
    max_incident_s: float = Field(
        default=300.0,
        gt=0,
        description="after this long the tampered view is accepted as the new normal view "
        "(incident closed, view re-learned)",
    )


class AreaChangeRuleConfig(Strict):
    """Protected-area change (graffiti, damage): a person visited, and part of the area stays changed."""

    settle_s: float = Field(
        default=3.0,
        gt=0,
        description="after a visit the area must be clear of people and motion this long before comparing",
    )
    min_changed_fraction: float = Field(
        default=0.03, gt=0, le=1, description="alert when at least this fraction of the area changed"
    )
    min_region_fraction: float = Field(
        default=0.003,
        ge=0,
        le=1,
        description="changed blobs smaller than this fraction of the area are ignored (noise, litter)",
    )
    pixel_delta: float = Field(
        default=30.0,
        gt=0,
        le=255,
        description="colour difference (0-255, after lighting normalisation) that counts as changed",
    )
    cooldown_s: float = Field(
        default=60.0, ge=0, description="no new alert for this area this soon after one"
    )
    max_visit_s: float = Field(
        default=900.0,
        gt=0,
        description="a visit longer than this is not judged: the view from before it is too old to compare",
    )


class ObjectRemovedRuleConfig(AreaChangeRuleConfig):
    """Object removed: the zone is the object's outline; any motion there counts as a visit, detected
    person or not (a thief the detector missed must still be caught)."""

    min_changed_fraction: float = Field(
        default=0.3, gt=0, le=1, description="alert when at least this fraction of the object's area changed"
    )


class ClassifierRuleConfig(Strict):
    """Alert when the camera's trained classifier (graffiti, fights, ...) keeps seeing one of ``labels``
    (see detector.classifier); the model itself is ``detector.classifier`` in the service settings."""

    labels: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        min_length=1,
        description="class names of the classifier model to alert on, e.g. [graffiti, fight]; each must be "
        "one the model outputs (checked when the detector starts)",
    )
    min_confidence: float = Field(
        default=0.5, ge=0, le=1, description="a box of a label counts as a sighting from this confidence up"
    )
    hold_s: float = Field(
        default=3.0,
        gt=0,
        description="alert once a label has been seen this long, in at least two thirds of the classified "
        "frames since it was first seen",
    )
    clear_s: float = Field(
        default=10.0,
        gt=0,
        description="close an incident once its label has been absent from the classified frames this long",
    )
    cooldown_s: float = Field(
        default=60.0, ge=0, description="no new alert for the same label this soon after one closed"
    )
    max_incident_s: float = Field(
        default=600.0,
        gt=0,
        description="close an incident after this long so its evidence gets sealed; the label is then not "
        "alerted on again until it has been absent clear_s (graffiti stays until cleaned)",
    )

    @model_validator(mode="after")
    def labels_unique(self) -> ClassifierRuleConfig:
        dupes = sorted({label for label in self.labels if self.labels.count(label) > 1})
        if dupes:
            raise ValueError(f"duplicate classifier labels: {', '.join(dupes)}")
        return self


class ZoneRules(Strict):
    loitering: LoiteringRuleConfig | None = Field(default=None, description="loitering rule for this zone")
    area_change: AreaChangeRuleConfig | None = Field(
        default=None, description="protected-area change rule: the zone is the protected area"
    )
    object_removed: ObjectRemovedRuleConfig | None = Field(
        default=None, description="object-removed rule: the zone is the object's area"
    )


class Zone(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="zone id, unique per camera")
    name: str = Field(default="", description="operator-facing name")
    polygon: tuple[Point, ...] = Field(
        min_length=3, description="vertices as (x, y) fractions of frame width and height"
    )
    rules: ZoneRules = Field(default_factory=ZoneRules, description="rules applied in this zone")
