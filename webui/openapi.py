"""The OpenAPI 3.0 document of the REST API (served at /api/openapi.json)."""
from __future__ import annotations

import calltracking

CALL_FILTERS = [
    ("from", "Start date YYYY-MM-DD (project time zone), inclusive"),
    ("to", "End date YYYY-MM-DD, inclusive"),
    ("project", "Project key or id (/api/projects)"), ("source", "Source name or id (/api/sources)"),
    ("campaign", "Campaign name or id (/api/campaigns)"),
    ("status", "answered | missed | in_progress"), ("operator", "Operator name or id (/api/operators)"),
    ("first", "first | repeat"), ("target", "1: target calls only | 0: the others"), ("tag", "Tag name"), ("caller", "Caller number (any readable form)"),
    ("q", "Words said in the call (its transcript): all required, `word*` a prefix, any case"),
    ("after", "Cursor: the page after (older than) this one (`next` of the previous answer)"),
    ("before", "Cursor: the page before (newer)"), ("limit", "Rows per page (1-1000, default 100)"),
]


def _q(name, desc, schema=None):
    return {"name": name, "in": "query", "required": False, "description": desc,
            "schema": schema or {"type": "string"}}


def _list_of(props: dict) -> dict:
    return {"type": "array", "items": {"type": "object", "properties": props}}


def _resp(desc, ref=None):
    body = {"description": desc}
    if ref:
        body["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}
    return body


ERRORS = {"400": _resp("Invalid input", "Error"), "401": _resp("Missing or invalid token", "Error"),
          "403": _resp("The token's role may not do this", "Error")}


def openapi_document(app=None) -> dict:
    call_props = {k: {"type": "string", "nullable": True} for k in (
        "pbx_id", "linkedid", "project", "did", "caller", "caller_name", "forwarded_from", "source",
        "campaign", "attribution", "queue", "started_at", "queued_at", "answered_at", "ended_at", "status",
        "missed_reason", "operator", "recording", "value", "comment", "reason")}
    for k in ("wait_seconds", "queue_wait_seconds", "talk_seconds", "hold_seconds", "time_to_call_seconds"):
        call_props[k] = {"type": "number", "nullable": True}
    call_props["id"] = {"type": "integer"}
    call_props["first_call"] = {"type": "boolean", "nullable": True}
    call_props["is_target"] = {"type": "boolean"}
    call_props["tags"] = {"type": "array", "items": {"type": "string"}}
    call_props["legs"] = {"type": "array", "items": {"type": "object"}}
    call_props["conversation"] = {
        "type": "object", "nullable": True,
        "description": "GET /api/calls/{id} only: the recording's measures (null until measured; "
                       "the two-sided ones null for a mono mix)",
        "properties": {**{k: {"type": "number", "nullable": True} for k in (
            "duration_seconds", "caller_talk_seconds", "operator_talk_seconds", "talk_ratio",
            "longest_silence_seconds", "first_operator_word_seconds")},
            **{k: {"type": "integer", "nullable": True} for k in (
                "channels", "operator_interruptions", "caller_interruptions")}}}
    call_props["transcript"] = {
        "type": "object", "nullable": True,
        "description": "GET /api/calls/{id} only: the transcript (null until transcribed; docs/transcripts.md)",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "error", "failed"]}, "backend": {"type": "string"},
            "error": {"type": "string"}, "attempts": {"type": "integer"},
            "greeting_said": {"type": "boolean", "nullable": True},
            "finished_at": {"type": "string", "format": "date-time", "nullable": True},
            "phrases": {"type": "array", "items": {"type": "object", "properties": {
                "side": {"type": "string", "enum": ["caller", "operator", "mixed"]},
                "start": {"type": "number"}, "end": {"type": "number"}, "text": {"type": "string"}}}},
            "mentions": {"type": "array", "items": {"type": "object", "properties": {
                "list": {"type": "string"}, "word": {"type": "string"},
                "side": {"type": "string", "enum": ["caller", "operator", "mixed"]}, "at": {"type": "number"}}}}}}
    number_props = {"id": {"type": "integer"}, "number": {"type": "string"}, "project": {"type": "string"},
                    "kind": {"type": "string", "enum": ["static", "pool"]},
                    "source": {"type": "string", "nullable": True}, "campaign": {"type": "string", "nullable": True},
                    "pool": {"type": "string", "nullable": True}, "description": {"type": "string"},
                    "callerid_prefix": {"type": "boolean"}, "record": {"type": "boolean"},
                    "active": {"type": "boolean"}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "calltracking API", "version": calltracking.__version__,
                 "description": "Calls, tracking numbers and reports. Times are ISO 8601 UTC. "
                                "Authenticate with `Authorization: Bearer <token>`."},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
                "Call": {"type": "object", "properties": call_props},
                "CallPage": {"type": "object", "properties": {
                    "calls": {"type": "array", "items": {"$ref": "#/components/schemas/Call"}},
                    "next": {"type": "string", "nullable": True}, "prev": {"type": "string", "nullable": True}}},
                "CallUpdate": {"type": "object", "additionalProperties": False, "properties": {
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "value": {"type": "string", "nullable": True, "example": "1500.00"},
                    "comment": {"type": "string"}, "reason": {"type": "string", "maxLength": 40}}},
                "Number": {"type": "object", "properties": number_props},
                "NumberCreate": {"type": "object", "required": ["number", "project"], "properties": {
                    "number": {"type": "string"}, "project": {"type": "string"}, "source": {"type": "string"},
                    "campaign": {"type": "string"}, "pool": {"type": "string"},
                    "description": {"type": "string"}, "callerid_prefix": {"type": "boolean"},
                    "record": {"type": "boolean"}}},
                "NumberList": {"type": "object", "properties": {
                    "numbers": {"type": "array", "items": {"$ref": "#/components/schemas/Number"}}}},
                "Report": {"type": "object", "additionalProperties": True},
                "ProjectList": {"type": "object", "properties": {"projects": _list_of({
                    "id": {"type": "integer"}, "key": {"type": "string"}, "name": {"type": "string"},
                    "timezone": {"type": "string"}, "currency": {"type": "string"}})}},
                "SourceList": {"type": "object", "properties": {"sources": _list_of({
                    "id": {"type": "integer"}, "project": {"type": "string"}, "name": {"type": "string"},
                    "channel": {"type": "string"}, "active": {"type": "boolean"},
                    "campaigns": {"type": "array", "items": {"type": "object"}}})}},
                "CampaignList": {"type": "object", "properties": {"campaigns": _list_of({
                    "id": {"type": "integer"}, "project": {"type": "string"}, "source": {"type": "string"},
                    "source_id": {"type": "integer"}, "name": {"type": "string"},
                    "utm_campaign": {"type": "string"}, "active": {"type": "boolean"}})}},
                "OperatorList": {"type": "object", "properties": {"operators": _list_of({
                    "id": {"type": "integer"}, "name": {"type": "string"}, "extension": {"type": "string"},
                    "active": {"type": "boolean"}})}},
            },
        },
        "paths": {
            "/api/calls": {"get": {
                "summary": "Calls, newest first, with the journal's filters and keyset pages",
                "parameters": [_q(n, d) for n, d in CALL_FILTERS],
                "responses": {"200": _resp("A page of calls", "CallPage"), **ERRORS}}},
            "/api/projects": {"get": {"summary": "Projects (key, name, time zone, currency)",
                                      "responses": {"200": _resp("Projects", "ProjectList"), **ERRORS}}},
            "/api/sources": {"get": {"summary": "Sources with their campaigns",
                                     "parameters": [_q("project", "Project key or id")],
                                     "responses": {"200": _resp("Sources", "SourceList"), **ERRORS}}},
            "/api/campaigns": {"get": {"summary": "Campaigns",
                                       "parameters": [_q("project", "Project key or id"),
                                                      _q("source", "Source name or id")],
                                       "responses": {"200": _resp("Campaigns", "CampaignList"), **ERRORS}}},
            "/api/operators": {"get": {"summary": "Operators (an operator's token: only its own)",
                                       "responses": {"200": _resp("Operators", "OperatorList"), **ERRORS}}},
            "/api/calls/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "get": {"summary": "One call with legs and tags",
                        "responses": {"200": _resp("The call", "Call"), "404": _resp("Not found", "Error"), **ERRORS}},
                "patch": {"summary": "Set tags, value, comment, reason",
                          "requestBody": {"required": True, "content": {"application/json": {
                              "schema": {"$ref": "#/components/schemas/CallUpdate"}}}},
                          "responses": {"200": _resp("The updated call", "Call"), **ERRORS}}},
            "/api/numbers": {
                "get": {"summary": "Tracking numbers (active; `all=1` with retired ones)",
                        "parameters": [_q("project", "Project key"), _q("all", "1: include retired numbers")],
                        "responses": {"200": _resp("Numbers", "NumberList"), **ERRORS}},
                "post": {"summary": "Map a number to a source (static) or a pool (admin)",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/NumberCreate"}}}},
                         "responses": {"201": _resp("Created", "Number"), **ERRORS}}},
            "/api/numbers/{number}": {
                "parameters": [{"name": "number", "in": "path", "required": True, "schema": {"type": "string"}}],
                "delete": {"summary": "Retire a mapping (admin)",
                           "responses": {"200": _resp("Retired", "Number"), "404": _resp("Not mapped", "Error"),
                                         **ERRORS}}},
            "/api/numbers/import": {"post": {
                "summary": "Import numbers from CSV (admin); all or nothing",
                "parameters": [_q("project", "Project key for rows without a project column")],
                "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}},
                "responses": {"200": _resp("Imported"), **ERRORS}}},
            "/api/reports": {"get": {"summary": "Names of the available reports",
                                     "responses": {"200": _resp("Report names"), **ERRORS}}},
            "/api/reports/{name}": {"get": {
                "summary": "One report as JSON (filters: project, from, to)",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                               _q("project", "Project id or key"), _q("from", "YYYY-MM-DD"), _q("to", "YYYY-MM-DD")],
                "responses": {"200": _resp("The report", "Report"), "404": _resp("Unknown report", "Error"),
                              **ERRORS}}},
        },
    }
