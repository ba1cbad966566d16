"""The edges users already run (DESIGN.md §14): ``send`` and ``tail`` for files and terminals,
the ``.escalation/broker`` file that lets them find the broker of ``escalation run``, and
``sli prometheus`` turning Prometheus counters into ``metric.observed`` slices."""
