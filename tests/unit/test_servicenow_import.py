"""ServiceNow incident log importer: mapping rules, messy rows, and the whole real file.

The CSV rows below are copied unchanged from "Incident management process enriched event log"
(Amaral, Fantinato, Reijers, Peres; UCI Machine Learning Repository,
https://doi.org/10.24432/C57S4H), licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation.importers.servicenow import (
    ServiceNowImportError,
    import_incident_log,
)
from escalation.cli.importers import servicenow_command
from escalation.importers.servicenow_mapping import (
    MappingError,
    ServiceNowMapping,
    load_mapping,
)

REPO = Path(__file__).resolve().parents[2]
REAL_FILE = Path(__file__).resolve().parents[3] / "shared/data/servicenow-incident-log/incident_event_log.csv"
DEFAULT_MAPPING = REPO / "examples/mappings/servicenow-default.yaml"

HEADER = (
    "number,incident_state,active,reassignment_count,reopen_count,sys_mod_count,made_sla,caller_id,"
    "opened_by,opened_at,sys_created_by,sys_created_at,sys_updated_by,sys_updated_at,contact_type,"
    "location,category,subcategory,u_symptom,cmdb_ci,impact,urgency,priority,assignment_group,"
    "assigned_to,knowledge,u_priority_confirmation,notify,problem_id,rfc,vendor,caused_by,closed_code,"
    "resolved_by,resolved_at,closed_at"
)
COLUMNS = HEADER.split(",")

# ---- real rows, one incident per snippet (file line numbers differ: the snippet's start at 2) ----

INC0001133 = """\
INC0001133,New,TRUE,0,0,0,TRUE,Caller 1310,?,02-03-2016 10:44,Created by 89,02-03-2016 10:53,Updated by 370,02-03-2016 10:53,Phone,Location 143,Category 53,Subcategory 80,Symptom 296,?,1 - High,1 - High,1 - Critical,Group 19,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 210,02-03-2016 17:20,07-03-2016 18:00
INC0001133,New,TRUE,0,0,1,TRUE,Caller 1310,?,02-03-2016 10:44,Created by 89,02-03-2016 10:53,Updated by 164,02-03-2016 16:52,Phone,Location 143,Category 53,Subcategory 80,Symptom 296,?,2 - Medium,2 - Medium,3 - Moderate,Group 19,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 210,02-03-2016 17:20,07-03-2016 18:00
INC0001133,Resolved,TRUE,0,0,2,TRUE,Caller 1310,?,02-03-2016 10:44,Created by 89,02-03-2016 10:53,Updated by 910,02-03-2016 17:20,Phone,Location 143,Category 53,Subcategory 80,Symptom 296,?,2 - Medium,2 - Medium,3 - Moderate,Group 19,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 210,02-03-2016 17:20,07-03-2016 18:00
INC0001133,Closed,FALSE,0,0,3,TRUE,Caller 1310,?,02-03-2016 10:44,Created by 89,02-03-2016 10:53,Updated by 908,07-03-2016 18:00,Phone,Location 143,Category 53,Subcategory 80,Symptom 296,?,2 - Medium,2 - Medium,3 - Moderate,Group 19,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 210,02-03-2016 17:20,07-03-2016 18:00
"""

INC0000538 = """\
INC0000538,New,TRUE,0,0,0,TRUE,Caller 225,Opened by  180,01-03-2016 09:08,Created by 81,01-03-2016 09:12,Updated by 340,01-03-2016 09:12,Phone,Location 204,Category 20,Subcategory 103,Symptom 470,?,1 - High,2 - Medium,2 - High,Group 25,Resolver 58,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 53,02-03-2016 13:14,07-03-2016 14:00
INC0000538,Active,TRUE,0,0,1,TRUE,Caller 225,Opened by  180,01-03-2016 09:08,Created by 81,01-03-2016 09:12,Updated by 213,02-03-2016 13:08,Phone,Location 204,Category 20,Subcategory 103,Symptom 470,?,1 - High,2 - Medium,2 - High,Group 25,Resolver 58,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 53,02-03-2016 13:14,07-03-2016 14:00
INC0000538,Resolved,TRUE,0,0,2,TRUE,Caller 225,Opened by  180,01-03-2016 09:08,Created by 81,01-03-2016 09:12,Updated by 213,02-03-2016 13:14,Phone,Location 204,Category 20,Subcategory 103,Symptom 470,?,1 - High,2 - Medium,2 - High,Group 25,Resolver 58,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 53,02-03-2016 13:14,07-03-2016 14:00
INC0000538,Closed,FALSE,0,0,3,FALSE,Caller 225,Opened by  180,01-03-2016 09:08,Created by 81,01-03-2016 09:12,Updated by 908,07-03-2016 14:00,Phone,Location 204,Category 20,Subcategory 103,Symptom 470,?,1 - High,2 - Medium,2 - High,Group 25,Resolver 58,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 53,02-03-2016 13:14,07-03-2016 14:00
"""

INC0000199 = """\
INC0000199,Resolved,TRUE,0,0,0,TRUE,Caller 4145,Opened by  301,29-02-2016 11:06,?,?,Updated by 908,29-02-2016 11:06,Phone,Location 204,Category 42,Subcategory 106,Symptom 242,?,3 - Low,3 - Low,4 - Low,Group 70,Resolver 149,TRUE,FALSE,Do Not Notify,?,?,?,?,code 11,Resolved by 133,?,05-03-2016 12:00
INC0000199,Closed,FALSE,0,0,1,TRUE,Caller 4145,Opened by  301,29-02-2016 11:06,?,?,Updated by 908,05-03-2016 12:00,Phone,Location 204,Category 42,Subcategory 106,Symptom 242,?,3 - Low,3 - Low,4 - Low,Group 70,Resolver 149,TRUE,FALSE,Do Not Notify,?,?,?,?,code 11,Resolved by 133,?,05-03-2016 12:00
"""

INC0000500 = """\
INC0000500,New,TRUE,0,0,0,TRUE,Caller 4180,Opened by  180,01-03-2016 07:56,Created by 81,01-03-2016 08:03,Updated by 340,01-03-2016 08:03,Phone,Location 143,Category 23,Subcategory 75,Symptom 4,?,2 - Medium,2 - Medium,3 - Moderate,Group 28,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 215,02-03-2016 09:08,07-03-2016 10:00
INC0000500,New,TRUE,0,0,1,TRUE,Caller 4180,Opened by  180,01-03-2016 07:56,Created by 81,01-03-2016 08:03,Updated by 340,01-03-2016 08:04,Phone,Location 143,Category 23,Subcategory 75,Symptom 4,?,1 - High,2 - Medium,2 - High,Group 28,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 215,02-03-2016 09:08,07-03-2016 10:00
INC0000500,New,TRUE,0,0,2,TRUE,Caller 4180,Opened by  180,01-03-2016 07:56,Created by 81,01-03-2016 08:03,Updated by 340,01-03-2016 08:06,Phone,Location 143,Category 13,Subcategory 302,Symptom 470,?,1 - High,2 - Medium,2 - High,Group 28,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 215,02-03-2016 09:08,07-03-2016 10:00
INC0000500,New,TRUE,0,0,3,TRUE,Caller 4180,Opened by  180,01-03-2016 07:56,Created by 81,01-03-2016 08:03,Updated by 307,01-03-2016 17:10,Phone,Location 143,Category 13,Subcategory 302,Symptom 470,?,1 - High,2 - Medium,2 - High,Group 28,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 215,02-03-2016 09:08,07-03-2016 10:00
INC0000500,Resolved,TRUE,0,0,4,TRUE,Caller 4180,Opened by  180,01-03-2016 07:56,Created by 81,01-03-2016 08:03,Updated by 928,02-03-2016 09:08,Phone,Location 143,Category 13,Subcategory 302,Symptom 470,?,1 - High,2 - Medium,2 - High,Group 28,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 215,02-03-2016 09:08,07-03-2016 10:00
INC0000500,Closed,FALSE,0,0,5,FALSE,Caller 4180,Opened by  180,01-03-2016 07:56,Created by 81,01-03-2016 08:03,Updated by 908,07-03-2016 10:00,Phone,Location 143,Category 13,Subcategory 302,Symptom 470,?,1 - High,2 - Medium,2 - High,Group 28,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 215,02-03-2016 09:08,07-03-2016 10:00
"""

INC0001287 = """\
INC0001287,Active,TRUE,0,0,0,TRUE,Caller 2374,Opened by  468,02-03-2016 12:58,Created by 188,02-03-2016 13:00,Updated by 798,02-03-2016 13:00,Phone,Location 204,Category 45,Subcategory 229,Symptom 208,?,2 - Medium,2 - Medium,3 - Moderate,Group 22,Resolver 133,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 119,11-08-2016 11:43,16-08-2016 12:00
INC0001287,Active,TRUE,0,0,2,TRUE,Caller 2374,Opened by  468,02-03-2016 12:58,Created by 188,02-03-2016 13:00,Updated by 798,02-03-2016 13:00,Phone,Location 204,Category 45,Subcategory 229,Symptom 208,?,2 - Medium,2 - Medium,3 - Moderate,Group 22,Resolver 133,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 119,11-08-2016 11:43,16-08-2016 12:00
INC0001287,Active,TRUE,0,0,3,TRUE,Caller 2374,Opened by  468,02-03-2016 12:58,Created by 188,02-03-2016 13:00,Updated by 798,02-03-2016 13:01,Phone,Location 204,Category 45,Subcategory 229,Symptom 208,?,2 - Medium,2 - Medium,3 - Moderate,Group 22,Resolver 133,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 119,11-08-2016 11:43,16-08-2016 12:00
INC0001287,Awaiting Vendor,TRUE,0,0,27,TRUE,Caller 2374,Opened by  468,02-03-2016 12:58,Created by 188,02-03-2016 13:00,Updated by 526,12-05-2016 14:12,Phone,Location 204,Category 45,Subcategory 229,Symptom 208,?,2 - Medium,2 - Medium,3 - Moderate,Group 22,Resolver 133,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 119,11-08-2016 11:43,16-08-2016 12:00
INC0001287,Awaiting Evidence,TRUE,0,0,48,TRUE,Caller 2374,Opened by  468,02-03-2016 12:58,Created by 188,02-03-2016 13:00,Updated by 526,13-07-2016 09:42,Phone,Location 204,Category 45,Subcategory 229,Symptom 208,?,2 - Medium,2 - Medium,3 - Moderate,Group 22,Resolver 133,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 119,11-08-2016 11:43,16-08-2016 12:00
INC0001287,Resolved,TRUE,0,0,58,TRUE,Caller 2374,Opened by  468,02-03-2016 12:58,Created by 188,02-03-2016 13:00,Updated by 526,11-08-2016 11:43,Phone,Location 204,Category 45,Subcategory 229,Symptom 208,?,2 - Medium,2 - Medium,3 - Moderate,Group 22,Resolver 133,TRUE,TRUE,Do Not Notify,?,?,?,?,code 6,Resolved by 119,11-08-2016 11:43,16-08-2016 12:00
INC0001287,Closed,FALSE,0,0,59,FALSE,Caller 2374,Opened by  468,02-03-2016 12:58,Created by 188,02-03-2016 13:00,Updated by 908,16-08-2016 12:00,Phone,Location 204,Category 45,Subcategory 229,Symptom 208,?,2 - Medium,2 - Medium,3 - Moderate,Group 22,Resolver 133,TRUE,TRUE,Do Not Notify,?,?,?,?,code 6,Resolved by 119,11-08-2016 11:43,16-08-2016 12:00
"""

INC0000347 = """\
INC0000347,New,TRUE,0,0,0,TRUE,Caller 3155,Opened by  386,29-02-2016 15:21,Created by 167,29-02-2016 15:27,Updated by 723,29-02-2016 15:27,Phone,Location 51,Category 61,Subcategory 164,?,?,2 - Medium,2 - Medium,3 - Moderate,Group 30,Resolver 184,TRUE,FALSE,Do Not Notify,?,?,?,?,code 4,Resolved by 183,03-03-2016 09:14,08-03-2016 10:00
INC0000347,New,TRUE,0,0,1,TRUE,Caller 3155,Opened by  386,29-02-2016 15:21,Created by 167,29-02-2016 15:27,Updated by 718,02-03-2016 12:24,Phone,Location 51,Category 61,Subcategory 164,?,?,2 - Medium,2 - Medium,3 - Moderate,Group 30,Resolver 184,TRUE,FALSE,Do Not Notify,?,?,?,?,code 4,Resolved by 183,03-03-2016 09:14,08-03-2016 10:00
INC0000347,Awaiting Problem,TRUE,0,0,2,TRUE,Caller 3155,Opened by  386,29-02-2016 15:21,Created by 167,29-02-2016 15:27,Updated by 718,02-03-2016 12:25,Phone,Location 51,Category 61,Subcategory 164,?,?,2 - Medium,2 - Medium,3 - Moderate,Group 30,Resolver 184,TRUE,FALSE,Do Not Notify,?,?,?,?,code 4,Resolved by 183,03-03-2016 09:14,08-03-2016 10:00
INC0000347,Resolved,TRUE,0,0,3,TRUE,Caller 3155,Opened by  386,29-02-2016 15:21,Created by 167,29-02-2016 15:27,Updated by 789,03-03-2016 09:14,Phone,Location 51,Category 61,Subcategory 164,?,?,2 - Medium,2 - Medium,3 - Moderate,Group 30,Resolver 184,TRUE,FALSE,Do Not Notify,?,?,?,?,code 4,Resolved by 183,03-03-2016 09:14,08-03-2016 10:00
INC0000347,Closed,FALSE,0,0,4,TRUE,Caller 3155,Opened by  386,29-02-2016 15:21,Created by 167,29-02-2016 15:27,Updated by 908,08-03-2016 10:00,Phone,Location 51,Category 61,Subcategory 164,?,?,2 - Medium,2 - Medium,3 - Moderate,Group 30,Resolver 184,TRUE,FALSE,Do Not Notify,?,?,?,?,code 4,Resolved by 183,03-03-2016 09:14,08-03-2016 10:00
"""

INC0000712 = """\
INC0000712,New,TRUE,0,0,0,TRUE,Caller 4968,Opened by  240,01-03-2016 12:54,Created by 108,01-03-2016 13:59,Updated by 468,01-03-2016 13:59,Phone,Location 161,Category 32,Subcategory 9,Symptom 4,?,2 - Medium,2 - Medium,3 - Moderate,Group 64,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 7,Resolved by 115,01-03-2016 14:22,06-03-2016 15:00
INC0000712,Awaiting User Info,TRUE,0,0,1,TRUE,Caller 4968,Opened by  240,01-03-2016 12:54,Created by 108,01-03-2016 13:59,Updated by 468,01-03-2016 14:01,Phone,Location 161,Category 32,Subcategory 9,Symptom 4,?,2 - Medium,2 - Medium,3 - Moderate,Group 64,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 7,Resolved by 115,01-03-2016 14:22,06-03-2016 15:00
INC0000712,Resolved,TRUE,0,0,2,TRUE,Caller 4968,Opened by  240,01-03-2016 12:54,Created by 108,01-03-2016 13:59,Updated by 468,01-03-2016 14:22,Phone,Location 161,Category 32,Subcategory 9,Symptom 4,?,2 - Medium,2 - Medium,3 - Moderate,Group 64,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 7,Resolved by 115,01-03-2016 14:22,06-03-2016 15:00
INC0000712,Closed,FALSE,0,0,3,TRUE,Caller 4968,Opened by  240,01-03-2016 12:54,Created by 108,01-03-2016 13:59,Updated by 908,06-03-2016 15:00,Phone,Location 161,Category 32,Subcategory 9,Symptom 4,?,2 - Medium,2 - Medium,3 - Moderate,Group 64,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 7,Resolved by 115,01-03-2016 14:22,06-03-2016 15:00
"""

INC0000045 = """\
INC0000045,New,TRUE,0,0,0,TRUE,Caller 2403,Opened by  8,29-02-2016 01:16,Created by 6,29-02-2016 01:23,Updated by 21,29-02-2016 01:23,Phone,Location 143,Category 55,Subcategory 170,Symptom 72,?,2 - Medium,2 - Medium,3 - Moderate,Group 56,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 5,Resolved by 149,29-02-2016 11:29,05-03-2016 12:00
INC0000045,Resolved,TRUE,0,0,2,TRUE,Caller 2403,Opened by  8,29-02-2016 01:16,Created by 6,29-02-2016 01:23,Updated by 642,29-02-2016 08:53,Phone,Location 143,Category 55,Subcategory 170,Symptom 72,?,2 - Medium,2 - Medium,3 - Moderate,Group 56,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 5,Resolved by 149,29-02-2016 11:29,05-03-2016 12:00
INC0000045,Resolved,TRUE,0,0,3,TRUE,Caller 2403,Opened by  8,29-02-2016 01:16,Created by 6,29-02-2016 01:23,Updated by 804,29-02-2016 11:29,Phone,Location 143,Category 55,Subcategory 170,Symptom 72,?,2 - Medium,2 - Medium,3 - Moderate,Group 56,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 5,Resolved by 149,29-02-2016 11:29,05-03-2016 12:00
INC0000045,Closed,FALSE,0,0,4,TRUE,Caller 2403,Opened by  8,29-02-2016 01:16,Created by 6,29-02-2016 01:23,Updated by 908,05-03-2016 12:00,Phone,Location 143,Category 55,Subcategory 170,Symptom 72,?,2 - Medium,2 - Medium,3 - Moderate,Group 56,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 5,Resolved by 149,29-02-2016 11:29,05-03-2016 12:00
"""

INC0000047 = """\
INC0000047,New,TRUE,0,0,0,TRUE,Caller 2403,Opened by  397,29-02-2016 04:40,Created by 171,29-02-2016 04:57,Updated by 746,29-02-2016 04:57,Phone,Location 165,Category 40,Subcategory 215,Symptom 471,?,2 - Medium,2 - Medium,3 - Moderate,Group 70,Resolver 89,TRUE,FALSE,Do Not Notify,?,?,?,?,code 5,Resolved by 81,01-03-2016 09:52,06-03-2016 10:00
INC0000047,Active,TRUE,1,0,1,TRUE,Caller 2403,Opened by  397,29-02-2016 04:40,Created by 171,29-02-2016 04:57,Updated by 21,29-02-2016 05:30,Phone,Location 165,Category 40,Subcategory 215,Symptom 471,?,2 - Medium,2 - Medium,3 - Moderate,Group 24,Resolver 31,TRUE,FALSE,Do Not Notify,?,?,?,?,code 5,Resolved by 81,01-03-2016 09:52,06-03-2016 10:00
INC0000047,Active,TRUE,1,0,2,TRUE,Caller 2403,Opened by  397,29-02-2016 04:40,Created by 171,29-02-2016 04:57,Updated by 21,29-02-2016 05:33,Phone,Location 165,Category 40,Subcategory 215,Symptom 471,?,2 - Medium,2 - Medium,3 - Moderate,Group 24,Resolver 31,TRUE,FALSE,Do Not Notify,?,?,?,?,code 5,Resolved by 81,01-03-2016 09:52,06-03-2016 10:00
INC0000047,Active,TRUE,1,0,3,TRUE,Caller 2403,Opened by  397,29-02-2016 04:40,Created by 171,29-02-2016 04:57,Updated by 804,29-02-2016 11:31,Phone,Location 165,Category 40,Subcategory 215,Symptom 471,?,2 - Medium,2 - Medium,3 - Moderate,Group 24,Resolver 31,TRUE,FALSE,Do Not Notify,?,?,?,?,code 5,Resolved by 81,01-03-2016 09:52,06-03-2016 10:00
INC0000047,Active,TRUE,1,0,4,TRUE,Caller 2403,Opened by  397,29-02-2016 04:40,Created by 171,29-02-2016 04:57,Updated by 703,29-02-2016 11:32,Phone,Location 165,Category 40,Subcategory 215,Symptom 471,?,2 - Medium,2 - Medium,3 - Moderate,Group 24,Resolver 31,TRUE,FALSE,Do Not Notify,?,?,?,?,code 5,Resolved by 81,01-03-2016 09:52,06-03-2016 10:00
INC0000047,Active,TRUE,1,0,5,TRUE,Caller 2403,Opened by  397,29-02-2016 04:40,Created by 171,29-02-2016 04:57,Updated by 332,01-03-2016 09:14,Phone,Location 165,Category 40,Subcategory 215,Symptom 471,?,2 - Medium,2 - Medium,3 - Moderate,Group 24,Resolver 31,TRUE,FALSE,Do Not Notify,?,?,?,?,code 5,Resolved by 81,01-03-2016 09:52,06-03-2016 10:00
INC0000047,Awaiting User Info,TRUE,1,0,6,TRUE,Caller 2403,Opened by  397,29-02-2016 04:40,Created by 171,29-02-2016 04:57,Updated by 332,01-03-2016 09:14,Phone,Location 165,Category 40,Subcategory 215,Symptom 471,?,2 - Medium,2 - Medium,3 - Moderate,Group 24,Resolver 89,TRUE,FALSE,Do Not Notify,?,?,?,?,code 5,Resolved by 81,01-03-2016 09:52,06-03-2016 10:00
INC0000047,Resolved,TRUE,1,0,7,TRUE,Caller 2403,Opened by  397,29-02-2016 04:40,Created by 171,29-02-2016 04:57,Updated by 332,01-03-2016 09:52,Phone,Location 165,Category 40,Subcategory 215,Symptom 471,?,2 - Medium,2 - Medium,3 - Moderate,Group 24,Resolver 89,TRUE,FALSE,Do Not Notify,?,?,?,?,code 5,Resolved by 81,01-03-2016 09:52,06-03-2016 10:00
INC0000047,Closed,FALSE,1,0,8,TRUE,Caller 2403,Opened by  397,29-02-2016 04:40,Created by 171,29-02-2016 04:57,Updated by 908,06-03-2016 10:00,Phone,Location 165,Category 40,Subcategory 215,Symptom 471,?,2 - Medium,2 - Medium,3 - Moderate,Group 24,Resolver 89,TRUE,FALSE,Do Not Notify,?,?,?,?,code 5,Resolved by 81,01-03-2016 09:52,06-03-2016 10:00
"""

INC0000093 = """\
INC0000093,Resolved,TRUE,0,0,0,TRUE,Caller 3545,Opened by  131,29-02-2016 08:56,?,?,Updated by 908,29-02-2016 08:56,Phone,Location 93,Category 61,Subcategory 164,Symptom 580,?,2 - Medium,2 - Medium,3 - Moderate,Group 70,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 7,Resolved by 66,?,05-03-2016 10:00
INC0000093,Closed,FALSE,0,0,1,TRUE,Caller 3545,Opened by  131,29-02-2016 08:56,?,?,Updated by 908,05-03-2016 10:00,Phone,Location 93,Category 61,Subcategory 164,Symptom 580,?,2 - Medium,2 - Medium,3 - Moderate,Group 70,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 7,Resolved by 66,?,05-03-2016 10:00
"""

INC0000358 = """\
INC0000358,New,TRUE,0,0,0,TRUE,Caller 1960,Opened by  185,29-02-2016 15:36,Created by 82,29-02-2016 15:42,Updated by 344,29-02-2016 15:42,Phone,?,?,?,?,?,3 - Low,2 - Medium,4 - Low,?,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 1,Resolved by 89,29-02-2016 15:43,09-03-2016 16:27
INC0000358,New,TRUE,0,0,1,TRUE,Caller 1960,Opened by  185,29-02-2016 15:36,Created by 82,29-02-2016 15:42,Updated by 344,29-02-2016 15:43,Phone,?,?,?,?,?,3 - Low,2 - Medium,4 - Low,?,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 1,Resolved by 89,29-02-2016 15:43,09-03-2016 16:27
INC0000358,Resolved,TRUE,0,0,2,TRUE,Caller 1960,Opened by  185,29-02-2016 15:36,Created by 82,29-02-2016 15:42,Updated by 344,29-02-2016 15:43,Phone,?,?,?,?,?,3 - Low,2 - Medium,4 - Low,?,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 1,Resolved by 89,29-02-2016 15:43,09-03-2016 16:27
INC0000358,Closed,FALSE,0,0,3,TRUE,Caller 1960,Opened by  185,29-02-2016 15:36,Created by 82,29-02-2016 15:42,Updated by 344,29-02-2016 15:44,Phone,?,?,?,?,?,3 - Low,2 - Medium,4 - Low,?,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 1,Resolved by 89,29-02-2016 15:43,09-03-2016 16:27
INC0000358,Closed,FALSE,0,0,4,TRUE,Caller 1960,Opened by  185,29-02-2016 15:36,Created by 82,29-02-2016 15:42,Updated by 348,09-03-2016 16:27,Phone,?,?,?,?,?,3 - Low,2 - Medium,4 - Low,?,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 1,Resolved by 89,29-02-2016 15:43,09-03-2016 16:27
"""

INC0000131 = """\
INC0000131,Active,TRUE,0,0,0,TRUE,Caller 3763,Opened by  433,29-02-2016 09:41,Created by 62,29-02-2016 07:14,Updated by 265,29-02-2016 07:14,Phone,Location 15,Category 45,Subcategory 220,Symptom 580,?,2 - Medium,2 - Medium,3 - Moderate,Group 66,Resolver 175,TRUE,FALSE,Do Not Notify,?,?,?,?,code 2,Resolved by 184,03-03-2016 09:27,08-03-2016 10:00
INC0000131,Awaiting User Info,TRUE,0,0,1,TRUE,Caller 3763,Opened by  433,29-02-2016 09:41,Created by 62,29-02-2016 07:14,Updated by 804,29-02-2016 09:45,Phone,Location 15,Category 45,Subcategory 220,Symptom 580,?,2 - Medium,2 - Medium,3 - Moderate,Group 66,Resolver 175,TRUE,FALSE,Do Not Notify,?,?,?,?,code 2,Resolved by 184,03-03-2016 09:27,08-03-2016 10:00
INC0000131,Resolved,TRUE,0,0,2,TRUE,Caller 3763,Opened by  433,29-02-2016 09:41,Created by 62,29-02-2016 07:14,Updated by 804,03-03-2016 09:27,Phone,Location 15,Category 45,Subcategory 220,Symptom 580,?,2 - Medium,2 - Medium,3 - Moderate,Group 66,Resolver 175,TRUE,FALSE,Do Not Notify,?,?,?,?,code 2,Resolved by 184,03-03-2016 09:27,08-03-2016 10:00
INC0000131,Closed,FALSE,0,0,3,TRUE,Caller 3763,Opened by  433,29-02-2016 09:41,Created by 62,29-02-2016 07:14,Updated by 908,08-03-2016 10:00,Phone,Location 15,Category 45,Subcategory 220,Symptom 580,?,2 - Medium,2 - Medium,3 - Moderate,Group 66,Resolver 175,TRUE,FALSE,Do Not Notify,?,?,?,?,code 2,Resolved by 184,03-03-2016 09:27,08-03-2016 10:00
"""

INC0000130 = """\
INC0000130,New,TRUE,0,0,2,TRUE,Caller 314,Opened by  62,29-02-2016 09:41,Created by 81,29-02-2016 07:17,Updated by 340,29-02-2016 07:27,Phone,Location 204,Category 61,Subcategory 164,Symptom 470,?,2 - Medium,2 - Medium,3 - Moderate,Group 72,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 180,03-03-2016 10:16,08-03-2016 11:00
INC0000130,New,TRUE,1,0,1,TRUE,Caller 314,Opened by  62,29-02-2016 09:41,Created by 81,29-02-2016 07:17,Updated by 133,29-02-2016 09:59,Phone,Location 204,Category 61,Subcategory 164,Symptom 470,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 180,03-03-2016 10:16,08-03-2016 11:00
INC0000130,Active,TRUE,1,0,2,TRUE,Caller 314,Opened by  62,29-02-2016 09:41,Created by 81,29-02-2016 07:17,Updated by 755,01-03-2016 14:13,Phone,Location 204,Category 61,Subcategory 164,Symptom 470,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 180,03-03-2016 10:16,08-03-2016 11:00
INC0000130,Active,TRUE,1,0,3,TRUE,Caller 314,Opened by  62,29-02-2016 09:41,Created by 81,29-02-2016 07:17,Updated by 533,03-03-2016 10:16,Phone,Location 204,Category 61,Subcategory 164,Symptom 470,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 180,03-03-2016 10:16,08-03-2016 11:00
INC0000130,Resolved,TRUE,1,0,4,TRUE,Caller 314,Opened by  62,29-02-2016 09:41,Created by 81,29-02-2016 07:17,Updated by 533,03-03-2016 10:16,Phone,Location 204,Category 61,Subcategory 164,Symptom 470,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 180,03-03-2016 10:16,08-03-2016 11:00
INC0000130,Closed,FALSE,1,0,5,TRUE,Caller 314,Opened by  62,29-02-2016 09:41,Created by 81,29-02-2016 07:17,Updated by 908,08-03-2016 11:00,Phone,Location 204,Category 61,Subcategory 164,Symptom 470,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 6,Resolved by 180,03-03-2016 10:16,08-03-2016 11:00
"""

INC0000715 = """\
INC0000715,New,TRUE,0,0,0,TRUE,Caller 1262,Opened by  40,01-03-2016 13:03,?,?,Updated by 908,01-03-2016 13:03,Phone,Location 204,Category 61,Subcategory 164,Symptom 114,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,?,TRUE,FALSE,Do Not Notify,?,?,?,?,code 8,Resolved by 180,10-03-2016 15:36,24-03-2016 18:50
INC0000715,Active,TRUE,0,0,1,TRUE,Caller 1262,Opened by  40,01-03-2016 13:03,?,?,Updated by 755,01-03-2016 14:10,Phone,Location 204,Category 61,Subcategory 164,Symptom 114,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 8,Resolved by 180,10-03-2016 15:36,24-03-2016 18:50
INC0000715,Resolved,TRUE,0,0,2,TRUE,Caller 1262,Opened by  40,01-03-2016 13:03,?,?,Updated by 533,03-03-2016 08:36,Phone,Location 204,Category 61,Subcategory 164,Symptom 114,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 8,Resolved by 180,10-03-2016 15:36,24-03-2016 18:50
INC0000715,Active,TRUE,0,1,3,TRUE,Caller 1262,Opened by  40,01-03-2016 13:03,?,?,Updated by 176,04-03-2016 12:42,Phone,Location 204,Category 61,Subcategory 164,Symptom 114,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 8,Resolved by 180,10-03-2016 15:36,24-03-2016 18:50
INC0000715,Active,TRUE,0,1,5,TRUE,Caller 1262,Opened by  40,01-03-2016 13:03,?,?,Updated by 533,10-03-2016 12:16,Phone,Location 204,Category 61,Subcategory 164,Symptom 114,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 8,Resolved by 180,10-03-2016 15:36,24-03-2016 18:50
INC0000715,Resolved,TRUE,0,1,6,TRUE,Caller 1262,Opened by  40,01-03-2016 13:03,?,?,Updated by 533,10-03-2016 12:16,Phone,Location 204,Category 61,Subcategory 164,Symptom 114,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 8,Resolved by 180,10-03-2016 15:36,24-03-2016 18:50
INC0000715,Active,TRUE,0,2,7,TRUE,Caller 1262,Opened by  40,01-03-2016 13:03,?,?,Updated by 236,10-03-2016 12:47,Phone,Location 204,Category 61,Subcategory 164,Symptom 114,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 8,Resolved by 180,10-03-2016 15:36,24-03-2016 18:50
INC0000715,Active,TRUE,0,2,8,TRUE,Caller 1262,Opened by  40,01-03-2016 13:03,?,?,Updated by 236,10-03-2016 12:47,Phone,Location 204,Category 61,Subcategory 164,Symptom 114,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 8,Resolved by 180,10-03-2016 15:36,24-03-2016 18:50
INC0000715,Active,TRUE,0,2,9,TRUE,Caller 1262,Opened by  40,01-03-2016 13:03,?,?,Updated by 533,10-03-2016 15:36,Phone,Location 204,Category 61,Subcategory 164,Symptom 114,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 8,Resolved by 180,10-03-2016 15:36,24-03-2016 18:50
INC0000715,Resolved,TRUE,0,2,10,TRUE,Caller 1262,Opened by  40,01-03-2016 13:03,?,?,Updated by 533,10-03-2016 15:36,Phone,Location 204,Category 61,Subcategory 164,Symptom 114,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 8,Resolved by 180,10-03-2016 15:36,24-03-2016 18:50
INC0000715,Closed,FALSE,0,2,11,FALSE,Caller 1262,Opened by  40,01-03-2016 13:03,?,?,Updated by 908,24-03-2016 18:50,Phone,Location 204,Category 61,Subcategory 164,Symptom 114,?,2 - Medium,2 - Medium,3 - Moderate,Group 73,Resolver 198,TRUE,FALSE,Do Not Notify,?,?,?,?,code 8,Resolved by 180,10-03-2016 15:36,24-03-2016 18:50
"""


# ------------------------------------------------------------------------------------- helpers


def rows_of(*snippets: str) -> list[str]:
    return [line for snippet in snippets for line in snippet.strip().splitlines()]


def csv_text(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def run(*rows: str, **kwargs):
    return import_incident_log(io.StringIO(csv_text(*rows), newline=""), **kwargs)


def events_of(result, ticket: str | None = None, type_: str | None = None) -> list[dict]:
    return [e for e in result.events
            if (ticket is None or e["ticket"] == ticket) and (type_ is None or e["type"] == type_)]


def edit(row: str, **changes: str) -> str:
    """A real row with some fields replaced (for malformed-row tests)."""
    fields = next(csv.reader([row]))
    for column, value in changes.items():
        fields[COLUMNS.index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)
    return out.getvalue().removesuffix("\n")


def without_lines(events: list[dict]) -> list[dict]:
    """Events minus provenance (CSV line numbers), to compare imports of reordered rows."""
    out = []
    for e in events:
        e = json.loads(json.dumps(e))
        e["attributes"].pop("line", None)
        out.append(e)
    return out


def accounted(result) -> bool:
    s = result.stats
    return s.rows_with_events + s.rows_no_change + s.rows_with_problems == s.rows


# ------------------------------------------------------------------------------ mapping rules


@pytest.mark.parametrize(
    ("snippet", "ticket", "priority", "changes"),
    [
        (INC0001133, "INC0001133", "P1", [("2016-03-02T16:52:00+00:00", "P3")]),   # 1 - Critical, then 3 - Moderate
        (INC0000538, "INC0000538", "P2", []),                                      # 2 - High
        (INC0000500, "INC0000500", "P3", [("2016-03-01T08:04:00+00:00", "P2")]),   # 3 - Moderate, then 2 - High
        (INC0000199, "INC0000199", "P4", []),                                      # 4 - Low
    ],
)
def test_priority_mapping_and_changes(snippet, ticket, priority, changes):
    result = run(*rows_of(snippet))
    opened = events_of(result, ticket, "ticket.opened")
    assert len(opened) == 1 and opened[0]["priority"] == priority
    got = [(e["time"], e["priority"]) for e in events_of(result, ticket, "ticket.priority_changed")]
    assert got == changes
    assert accounted(result) and not result.problems


def test_opened_event_fields():
    result = run(*rows_of(INC0000045))
    (opened,) = events_of(result, type_="ticket.opened")
    assert opened["id"] == "INC0000045-1"
    assert opened["time"] == "2016-02-29T01:16:00+00:00"          # opened_at, not sys_created_at
    assert opened["agreement"] == "servicenow-sample"
    assert opened["service"] == "servicedesk"
    assert opened["customer"] == "uci-enterprise"
    assert opened["summary"] == "Category 55 / Subcategory 170"
    attrs = opened["attributes"]
    assert attrs["impact"] == "2 - Medium" and attrs["urgency"] == "2 - Medium"
    assert attrs["contact_type"] == "Phone" and attrs["assignment_group"] == "Group 56"
    assert attrs["made_sla"] is True and attrs["closed_code"] == "code 5"
    assert attrs["servicenow_priority"] == "3 - Moderate"


def test_made_sla_is_the_final_recorded_value():
    # INC0000538: made_sla TRUE on every snapshot but the Closed one.
    result = run(*rows_of(INC0000538))
    assert events_of(result, type_="ticket.opened")[0]["attributes"]["made_sla"] is False
    closed = events_of(result, type_="ticket.closed")[0]
    assert closed["attributes"]["made_sla"] is False
    assert closed["attributes"]["made_sla_false_at"] == "2016-03-07T14:00:00+00:00"


def test_agreement_option_overrides_the_mapping():
    result = run(*rows_of(INC0000045), agreement="servicenow-sample-r2")
    assert events_of(result, type_="ticket.opened")[0]["agreement"] == "servicenow-sample-r2"


@pytest.mark.parametrize(
    ("snippet", "ticket", "time", "rule"),
    [
        (INC0000047, "INC0000047", "2016-02-29T04:57:00+00:00", "assignee"),   # New, but assigned at creation
        (INC0000712, "INC0000712", "2016-03-01T14:01:00+00:00", "state"),      # New -> Awaiting User Info, nobody assigned
        (INC0000045, "INC0000045", "2016-02-29T08:53:00+00:00", "state"),      # New -> Resolved, nobody assigned
        (INC0001287, "INC0001287", "2016-03-02T13:00:00+00:00", "state"),      # created Active
        (INC0000093, "INC0000093", "2016-02-29T08:56:00+00:00", "state"),      # created Resolved
        (INC0000358, "INC0000358", "2016-02-29T15:43:00+00:00", "state"),      # New, New, Resolved
    ],
)
def test_acknowledge_rule(snippet, ticket, time, rule):
    result = run(*rows_of(snippet))
    acks = events_of(result, ticket, "ticket.acknowledged")
    assert [(e["time"], e["attributes"]["rule"]) for e in acks] == [(time, rule)]
    types = [e["type"] for e in events_of(result, ticket)]
    if "ticket.resolved" in types:
        assert types.index("ticket.acknowledged") < types.index("ticket.resolved")


def test_acknowledge_rule_is_configurable():
    mapping = ServiceNowMapping(acknowledge={"unacknowledged_states": ["New"], "on_assignee": False})
    result = run(*rows_of(INC0000047), mapping=mapping)
    (ack,) = events_of(result, type_="ticket.acknowledged")
    assert ack["time"] == "2016-02-29T05:30:00+00:00"   # the Active snapshot


@pytest.mark.parametrize(
    ("snippet", "ticket", "statuses"),
    [
        (INC0000712, "INC0000712", [("2016-03-01T14:01:00+00:00", "pending_customer", "Awaiting User Info")]),
        (INC0000347, "INC0000347", [("2016-03-02T12:25:00+00:00", "pending_vendor", "Awaiting Problem")]),
        (INC0001287, "INC0001287", [("2016-05-12T14:12:00+00:00", "pending_vendor", "Awaiting Vendor"),
                                    ("2016-07-13T09:42:00+00:00", "pending_customer", "Awaiting Evidence")]),
        (INC0000047, "INC0000047", [("2016-03-01T09:14:00+00:00", "pending_customer", "Awaiting User Info")]),
        (INC0000131, "INC0000131", [("2016-02-29T09:45:00+00:00", "pending_customer", "Awaiting User Info")]),
        # New -> Active is in_progress -> in_progress: no event
        (INC0000538, "INC0000538", []),
    ],
)
def test_status_mapping(snippet, ticket, statuses):
    result = run(*rows_of(snippet))
    got = [(e["time"], e["status"], e["attributes"]["incident_state"])
           for e in events_of(result, ticket, "ticket.status_changed")]
    assert got == statuses


def test_state_created_in_awaiting_emits_status_at_once():
    row = edit(rows_of(INC0000712)[0], incident_state="Awaiting User Info")
    result = run(row)
    assert [e["type"] for e in result.events] == [
        "ticket.opened", "ticket.assigned", "ticket.acknowledged", "ticket.status_changed"]


def test_assignment_events():
    result = run(*rows_of(INC0000047))
    got = [(e["time"], e["assignee"], e["group"]) for e in events_of(result, type_="ticket.assigned")]
    assert got == [
        ("2016-02-29T04:57:00+00:00", "Resolver 89", "Group 70"),   # first snapshot
        ("2016-02-29T05:30:00+00:00", "Resolver 31", "Group 24"),   # reassigned
        ("2016-03-01T09:14:00+00:00", "Resolver 89", "Group 24"),   # assignee only
    ]


def test_missing_values_are_null_and_no_assignment_without_values():
    result = run(*rows_of(INC0000358))
    opened = events_of(result, type_="ticket.opened")[0]
    assert opened["summary"] == "(no category) / (no subcategory)"
    assert opened["attributes"]["assignment_group"] is None and opened["attributes"]["location"] is None
    assert events_of(result, type_="ticket.assigned") == []


def test_resolved_at_resolved_at_when_present():
    result = run(*rows_of(INC0000045))
    (resolved,) = events_of(result, type_="ticket.resolved")
    assert resolved["time"] == "2016-02-29T11:29:00+00:00"
    assert resolved["attributes"]["time_source"] == "resolved_at"
    assert resolved["attributes"]["snapshot_time"] == "2016-02-29T08:53:00+00:00"


def test_resolved_falls_back_to_first_resolved_snapshot():
    result = run(*rows_of(INC0000093))     # resolved_at is '?'
    (resolved,) = events_of(result, type_="ticket.resolved")
    assert resolved["time"] == "2016-02-29T08:56:00+00:00"
    assert resolved["attributes"]["time_source"] == "snapshot"


def test_reopen_cycles():
    result = run(*rows_of(INC0000715))
    got = [(e["type"].removeprefix("ticket."), e["time"], e["attributes"].get("time_source"))
           for e in result.events if e["type"] in ("ticket.resolved", "ticket.reopened", "ticket.closed")]
    assert got == [
        ("resolved", "2016-03-03T08:36:00+00:00", "snapshot"),     # resolved_at belongs to the last cycle
        ("reopened", "2016-03-04T12:42:00+00:00", None),
        ("resolved", "2016-03-10T12:16:00+00:00", "snapshot"),
        ("reopened", "2016-03-10T12:47:00+00:00", None),
        ("resolved", "2016-03-10T15:36:00+00:00", "resolved_at"),
        ("closed", "2016-03-24T18:50:00+00:00", "closed_at"),
    ]
    reopens = [e["attributes"]["reopen_count"] for e in events_of(result, type_="ticket.reopened")]
    assert reopens == [1, 2]


def test_reopen_by_count_while_still_resolved():
    rows = rows_of(INC0000045)
    rows[2] = edit(rows[2], reopen_count="1")        # Resolved -> Resolved, but reopened in between
    result = run(*rows)
    types = [e["type"] for e in result.events]
    assert types.count("ticket.reopened") == 1 and types.count("ticket.resolved") == 2


def test_closed_at_closed_at_and_later_closed_rows_are_no_change():
    result = run(*rows_of(INC0000358))
    (closed,) = events_of(result, type_="ticket.closed")
    assert closed["time"] == "2016-03-09T16:27:00+00:00"
    assert closed["attributes"]["sys_mod_count"] == 3       # first Closed snapshot
    assert result.events[-1] is closed
    assert result.stats.rows_no_change == 3                  # both New rows and the second Closed row
    assert accounted(result)


def test_open_snapshot_after_close_is_reported():
    rows = rows_of(INC0000093)
    late = edit(rows[0], incident_state="Active", sys_mod_count="2", sys_updated_at="06-03-2016 10:00")
    result = run(*rows, late)
    assert [str(p) for p in result.problems] == [
        "line 4: INC0000093: snapshot after the incident was closed (incident_state 'Active'); "
        "nothing may follow ticket.closed"]
    assert result.events[-1]["type"] == "ticket.closed" and accounted(result)


def test_cancelled_state():
    rows = rows_of(INC0000093)
    rows[1] = edit(rows[1], incident_state="Canceled")
    result = run(*rows)
    assert [e["type"] for e in result.events][-1] == "ticket.cancelled"
    assert "ticket.closed" not in [e["type"] for e in result.events]


# ------------------------------------------------------------------- time, order, repetition


def test_events_earlier_than_opened_are_clamped_and_recorded():
    result = run(*rows_of(INC0000131))     # sys_updated_at 07:14 < opened_at 09:41
    first = events_of(result)[1:3]
    assert {e["type"] for e in first} == {"ticket.assigned", "ticket.acknowledged"}
    for e in first:
        assert e["time"] == "2016-02-29T09:41:00+00:00"
        assert e["attributes"]["clamped_from"] == "2016-02-29T07:14:00+00:00"
        assert e["attributes"]["clamp_reason"] == "earlier than opened_at"
    assert result.stats.clamped_events == {"earlier than opened_at": 2}
    assert [w.line for w in result.warnings] == [2, 2]


def test_out_of_order_rows_sorted_by_mod_count():
    rows = rows_of(INC0000047)
    shuffled = [rows[i] for i in (8, 3, 0, 6, 1, 7, 2, 5, 4)]
    assert without_lines(run(*shuffled).events) == without_lines(run(*rows).events)


def test_conflicting_mod_count_and_time_never_goes_back_in_time():
    # INC0000130: the first line says sys_mod_count 2 at 07:27, before mod 1 at 09:59.
    result = run(*rows_of(INC0000130))
    times = [datetime.fromisoformat(e["time"]) for e in result.events]
    assert times == sorted(times)
    clamped = [e for e in result.events if "clamped_from" in e["attributes"]]
    assert [(e["type"], e["attributes"]["line"]) for e in clamped] == [("ticket.assigned", 2)]
    assert accounted(result)


def test_repeated_snapshots_are_no_change():
    rows = rows_of(INC0000047)
    repeated = rows[:4] + [rows[3], rows[3]] + rows[4:]
    base, result = run(*rows), run(*repeated)
    assert without_lines(result.events) == without_lines(base.events)
    assert result.stats.rows_no_change == base.stats.rows_no_change + 2
    assert result.stats.rows_duplicate == base.stats.rows_duplicate + 2
    assert accounted(result)


@settings(max_examples=30, deadline=None)
@given(st.permutations(rows_of(INC0000715, INC0000045, INC0001133)))
def test_row_order_does_not_matter(rows):
    expected = without_lines(run(*rows_of(INC0000715, INC0000045, INC0001133)).events)
    assert without_lines(run(*rows).events) == expected


def test_global_order_and_ids():
    result = run(*rows_of(INC0000715, INC0000045, INC0000047, INC0000712))
    keys = [(datetime.fromisoformat(e["time"]), e["ticket"], int(e["id"].rsplit("-", 1)[1])) for e in result.events]
    assert keys == sorted(keys)
    assert len({e["id"] for e in result.events}) == len(result.events)
    again = run(*rows_of(INC0000715, INC0000045, INC0000047, INC0000712))
    assert [e["id"] for e in again.events] == [e["id"] for e in result.events]


@pytest.mark.parametrize(
    ("timezone", "opened", "later"),
    [
        ("UTC", "2016-03-02T12:58:00+00:00", "2016-05-12T14:12:00+00:00"),
        ("Europe/Berlin", "2016-03-02T12:58:00+01:00", "2016-05-12T14:12:00+02:00"),   # DST in May
        ("America/Sao_Paulo", "2016-03-02T12:58:00-03:00", "2016-05-12T14:12:00-03:00"),
    ],
)
def test_timezone(timezone, opened, later):
    result = run(*rows_of(INC0001287), timezone=timezone)
    assert events_of(result, type_="ticket.opened")[0]["time"] == opened
    assert events_of(result, type_="ticket.status_changed")[0]["time"] == later


def test_unknown_timezone_is_an_error():
    with pytest.raises(ServiceNowImportError, match="time zone"):
        run(*rows_of(INC0000045), timezone="Mars/Olympus")


# -------------------------------------------------------------------------------- bad rows


def test_unusable_rows_are_reported_with_line_numbers():
    good = rows_of(INC0000047)
    rows = [
        good[0],                                                   # line 2
        edit(good[1], number="?"),                                 # line 3
        edit(good[2], sys_updated_at="31-02-2016 25:61"),          # line 4
        edit(good[3], priority="5 - Planning"),                    # line 5
        edit(good[4], incident_state="On Hold"),                   # line 6
        ",".join(next(csv.reader([good[5]]))[:20]),                # line 7: cut short
        edit(good[6], sys_mod_count="six"),                        # line 8
        edit(good[7], opened_at="?", priority="?"),                # line 9
        good[8],                                                   # line 10
    ]
    result = run(*rows)
    assert [str(p) for p in result.problems] == [
        "line 3: missing number",
        "line 4: unparseable sys_updated_at '31-02-2016 25:61' (expected %d-%m-%Y %H:%M)",
        "line 5: unknown priority '5 - Planning'",
        "line 6: unknown incident_state 'On Hold'",
        "line 7: expected 36 fields, got 20",
        "line 8: sys_mod_count is not an integer: 'six'",
        "line 9: missing opened_at; missing priority",
    ]
    assert result.stats.problems_by_reason["missing number"] == 1
    assert result.stats.rows == 9 and accounted(result)
    assert {e["attributes"].get("line") for e in result.events} <= {2, 10}
    assert [e["type"] for e in result.events][-1] == "ticket.closed"


def test_line_numbers_count_physical_lines():
    rows = rows_of(INC0000045)
    multi = edit(rows[1], caller_id="Caller\n2403")                # quoted field over two lines
    text = "\n".join([HEADER, rows[0], "", multi, edit(rows[2], priority="x"), rows[3]]) + "\n"
    result = import_incident_log(io.StringIO(text, newline=""))
    assert [str(p) for p in result.problems] == ["line 6: unknown priority 'x'"]
    assert result.stats.blank_lines == 1 and result.stats.rows == 4 and accounted(result)


def test_unparseable_optional_timestamp_is_a_warning():
    rows = [edit(r, resolved_at="soon") for r in rows_of(INC0000045)]
    result = run(*rows)
    assert not result.problems and len(result.warnings) == 4
    assert str(result.warnings[0]) == "line 2: INC0000045: unparseable resolved_at 'soon'; ignored"
    assert events_of(result, type_="ticket.resolved")[0]["time"] == "2016-02-29T08:53:00+00:00"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("number,incident_state\nINC1,New\n", "required column"),
    ],
)
def test_unusable_input(text, message):
    with pytest.raises(ServiceNowImportError, match=message):
        import_incident_log(io.StringIO(text))


# ----------------------------------------------------------------------------------- mapping


def test_example_mapping_file_equals_defaults():
    assert load_mapping(DEFAULT_MAPPING) == ServiceNowMapping()
    assert load_mapping(None) == ServiceNowMapping()


def test_custom_mapping(tmp_path):
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(
        "columns: {number: Number, incident_state: State}\n"
        "service: {column: category}\n"
        "customer: {constant: acme}\n"
        "agreement: desk-2016\n"
        "states:\n"
        "  open: {New: new, Active: working, Awaiting User Info: waiting}\n"
        "  resolved: [Resolved]\n"
        "  closed: [Closed]\n"
        "priorities: {'1 - Critical': crit, '2 - High': high, '3 - Moderate': normal, '4 - Low': low}\n"
        "initial_status: new\n",
        encoding="utf-8",
    )
    header = HEADER.replace("number,incident_state", "Number,State", 1)
    text = "\n".join([header, *rows_of(INC0000047)]) + "\n"
    result = import_incident_log(io.StringIO(text, newline=""), mapping=mapping_file)
    opened = events_of(result, type_="ticket.opened")[0]
    assert (opened["service"], opened["customer"], opened["agreement"], opened["priority"]) == \
        ("category-40", "acme", "desk-2016", "normal")
    assert [e["status"] for e in events_of(result, type_="ticket.status_changed")] == ["working", "waiting"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("colums: {}\n", "colums"),
        ("service: {constant: a, column: category}\n", "exactly one"),
        ("attributes: [nonsense]\n", "nonsense"),
        ("states: {open: {Resolved: x}, resolved: [Resolved]}\n", "both"),
        ("- a list\n", "YAML mapping"),
    ],
)
def test_bad_mapping(tmp_path, content, message):
    path = tmp_path / "m.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MappingError, match=message):
        load_mapping(path)


# --------------------------------------------------------------------------------------- CLI


def test_cli_writes_events_problems_and_summary(tmp_path):
    rows = rows_of(INC0000045)
    source = tmp_path / "log.csv"
    source.write_text(csv_text(rows[0], edit(rows[1], priority="9 - Eventually"), *rows[2:]), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(servicenow_command, [str(source), "--agreement", "servicenow-sample-r2",
                                                "--timezone", "Europe/Berlin"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["type"] == "ticket.opened" and events[0]["agreement"] == "servicenow-sample-r2"
    assert events[0]["time"] == "2016-02-29T01:16:00+01:00"
    err = result.stderr.splitlines()
    assert err[0] == "line 3: unknown priority '9 - Eventually'"
    assert err[-1].startswith("servicenow import: 4 rows") and "1 problems" in err[-1]


def test_cli_out_and_problems_files(tmp_path):
    source = tmp_path / "log.csv"
    source.write_text(csv_text(*rows_of(INC0000131)), encoding="utf-8")
    out, problems = tmp_path / "events.jsonl", tmp_path / "problems.txt"
    result = CliRunner().invoke(servicenow_command, [str(source), "--out", str(out), "--problems", str(problems)])
    assert result.exit_code == 0 and result.stdout == ""
    assert len(out.read_text().splitlines()) == len(import_incident_log(source).events)
    assert problems.read_text().splitlines()[0].startswith("line 2: warning: INC0000131: ticket.")
    assert result.stderr.startswith("servicenow import:")


@pytest.mark.parametrize(
    "args",
    [
        ["--timezone", "Nowhere/Special"],
        ["--mapping", "MISSING.yaml"],
        ["--mapping", "BAD"],
        ["--unknown-flag"],
    ],
)
def test_cli_unusable_arguments_exit_2(tmp_path, args):
    source = tmp_path / "log.csv"
    source.write_text(csv_text(*rows_of(INC0000045)), encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("colums: {}\n", encoding="utf-8")
    args = [str(bad) if a == "BAD" else a for a in args]
    result = CliRunner().invoke(servicenow_command, [str(source), *args])
    assert result.exit_code == 2, result.output


def test_cli_missing_file_or_columns_exit_2(tmp_path):
    assert CliRunner().invoke(servicenow_command, [str(tmp_path / "none.csv")]).exit_code == 2
    source = tmp_path / "log.csv"
    source.write_text("number,state\nINC1,New\n", encoding="utf-8")
    result = CliRunner().invoke(servicenow_command, [str(source)])
    assert result.exit_code == 2 and "required column" in result.stderr


# --------------------------------------------------------------------------- the whole real file


@pytest.fixture(scope="module")
def real_import():
    if not REAL_FILE.is_file():
        pytest.skip(f"real ServiceNow incident log not found at {REAL_FILE} (shared data directory absent)")
    return import_incident_log(REAL_FILE)


def test_real_file_every_row_accounted_for(real_import):
    with open(REAL_FILE, newline="", encoding="utf-8") as handle:
        records = [r for r in csv.reader(handle)][1:]
    rows = [r for r in records if r]
    s = real_import.stats
    assert s.rows == len(rows)
    assert s.rows_used + s.rows_with_problems == s.rows
    assert s.incidents == len({r[0] for r in rows if r[0] not in ("", "?")})
    assert s.events_by_type["ticket.opened"] == s.incidents
    assert sum(s.events_by_type.values()) == s.events == len(real_import.events)


def test_real_file_events_follow_the_contract(real_import):
    per_ticket: dict[str, list[dict]] = {}
    previous = None
    for e in real_import.events:
        t = datetime.fromisoformat(e["time"])
        assert t.tzinfo is not None and e["time"].endswith("+00:00")
        key = (t, e["ticket"], int(e["id"].rsplit("-", 1)[1]))
        assert previous is None or previous <= key
        previous = key
        per_ticket.setdefault(e["ticket"], []).append(e)
    assert len({e["id"] for e in real_import.events}) == len(real_import.events)
    for events in per_ticket.values():
        assert events[0]["type"] == "ticket.opened"
        assert {"priority", "service", "agreement", "customer"} <= events[0].keys()
        assert events[0]["priority"] in {"P1", "P2", "P3", "P4"}
        types = [e["type"] for e in events]
        assert types.count("ticket.acknowledged") <= 1
        assert types.count("ticket.closed") + types.count("ticket.cancelled") <= 1
        if "ticket.closed" in types:
            assert types[-1] == "ticket.closed"
        # resolved and reopened alternate
        cycle = [t for t in types if t in ("ticket.resolved", "ticket.reopened")]
        assert all(a != b for a, b in zip(cycle, cycle[1:])) and (not cycle or cycle[0] == "ticket.resolved")
    json.dumps(real_import.events)   # JSON-ready


def test_real_file_cli_round_trip(real_import, tmp_path):
    out = tmp_path / "events.jsonl"
    result = CliRunner().invoke(servicenow_command, [str(REAL_FILE), "--out", str(out)])
    assert result.exit_code == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == real_import.events
    assert f"{real_import.stats.rows} rows" in result.stderr.splitlines()[-1]
