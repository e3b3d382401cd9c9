"""Schedules as data: one-formula schedules (`decay`) and composites (`compose`)."""
