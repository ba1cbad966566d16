"""Service levels measured from metric slices (SLOs): attainment per period, burn-rate alerts,
credits due at period close (the metric side of the engine)."""
