"""Dynamic number insertion: visitor sessions, pool-number assignment, abuse limits, pool sizing."""
