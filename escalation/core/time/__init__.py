"""Time as the contracts count it: calendars of open hours (counted time), calendar-month periods
in a zone, and maintenance windows (RFC 5545 recurrences)."""
