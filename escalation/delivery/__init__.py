"""Delivery of notification outputs to on-call and chat systems (DESIGN.md §12).

Pure decisions (no I/O): :mod:`.actions` (what an output means for an alert: trigger,
acknowledge, resolve), one module per target kind turning an output into request(s)
(:mod:`.pagerduty`, :mod:`.opsgenie`, :mod:`.slack`, :mod:`.webhook`, :mod:`.mail`,
:mod:`.alertmanager`), :mod:`.plan` (dispatch by kind), :mod:`.retry` (what to do after an
attempt), :mod:`.ratelimit`, :mod:`.offsets` (which input offsets may be committed) and
:mod:`.log` (the ``deliveries`` records and the delivered set).

I/O: :mod:`.transport` (HTTP, SMTP, Kafka), :mod:`.lanes` (order per dedup_key and target),
:mod:`.worker` (the ``escalation deliver`` consumer), :mod:`.receive` (``escalation receive``),
:mod:`.cli` (the commands).
"""
