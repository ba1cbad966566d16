"""Money: penalties and credits assessed against period caps (half-up to cents), earn-back, and the
desk that books them per agreement in a deterministic order."""
