"""Interpreted call state -> the database (calls, legs, operators, the listener's state)."""
