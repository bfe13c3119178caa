"""Background work: the scheduler, notifications, integrations and recordings."""
