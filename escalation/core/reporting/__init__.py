"""Period reports: the figures each source keeps per agreement and period, ticket objectives, and
the one rule for a clock's verdict ("breach wins, else met")."""
