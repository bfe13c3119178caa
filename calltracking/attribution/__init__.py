"""Attribution: which project, source and campaign a call belongs to, and which queue gets it."""
