"""REST API v1 for the caller and organisations."""

from __future__ import annotations

from flask import Response, jsonify
from flask_login import current_user
from pydantic import BaseModel

from portal.api import endpoint
from portal.db import get_session
from shared_records import policy
from shared_records.schemas import OrganizationOut
from shared_records.serializers import organization_json, user_json


class MeOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    organization: OrganizationOut


class OrganizationList(BaseModel):
    items: list[OrganizationOut]


@endpoint("/me", "GET", summary="The signed-in user", tag="me", responses={200: MeOut})
def me() -> Response:
    return jsonify(user_json(current_user))


@endpoint(
    "/organizations",
    "GET",
    summary="The caller's organisation and its value-chain partners",
    tag="organizations",
    responses={200: OrganizationList},
)
def organizations() -> Response:
    orgs = get_session().scalars(policy.visible_organizations(current_user)).all()
    return jsonify({"items": [organization_json(o) for o in orgs]})


@endpoint(
    "/organizations/<int:organization_id>",
    "GET",
    summary="One organisation of the caller's value chains",
    tag="organizations",
    responses={200: OrganizationOut},
)
def organization(organization_id: int) -> Response:
    org = policy.get_visible_organization(get_session(), current_user, organization_id)
    return jsonify(organization_json(org))
