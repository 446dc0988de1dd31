"""Query-string models: one per route that reads its query, used both to parse it and for the OpenAPI parameters.

A route names its model (``route(app, path, query=Model)``); the view gets the
parsed model as its ``query`` argument, and a bad value is a 400 naming the
parameter. Every value arrives as text, so fields are strings (the services
parse dates, limits and tokens and say what is wrong with them). Parameters a
route does not read are ignored, as they always were; ``""`` is not sent.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.api.models import OptShort, Short, optional_short

Flag = Literal["true", "false"] | None
Token = optional_short(2000)  # a page token can outgrow an id


class QueryModel(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class PageQuery(QueryModel):
    """The audit trail's filters and paging (``since``/``until``: ISO 8601, inclusive; ``limit``: 1-1000)."""

    agent_id: OptShort = None
    skill_id: OptShort = None
    since: OptShort = None
    until: OptShort = None
    limit: OptShort = Field(default=None, description="1-1000, default 50")
    next_token: Token = Field(default=None, description="from the previous page; repeat the same filters")


class AuditQuery(PageQuery):
    action: OptShort = None


class KeysQuery(QueryModel):
    agent_id: OptShort = None
    include_revoked: Flag = Field(default=None, description="default true")


class CheckQuery(QueryModel):
    package_name: Short
    version: Short
    agent_id: OptShort = None


class RulesQuery(QueryModel):
    package_name: OptShort = None
    include_revoked: Flag = Field(default=None, description="default false")


class HostRulesQuery(QueryModel):
    include_revoked: Flag = Field(default=None, description="default false")


class AgentQuery(QueryModel):
    agent_id: OptShort = Field(default=None, description="whose package set (an agent key: its own)")


class VersionQuery(QueryModel):
    version: OptShort = Field(default=None, description="default: the newest upload")


class SkillQuery(QueryModel):
    skill_id: Short
