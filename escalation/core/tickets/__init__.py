"""One ticket's step: its clocks, the lifecycle state machine, alerts for on-call tools, supporting
agreements and customer obligations, and the wording of the outputs a ticket causes."""
