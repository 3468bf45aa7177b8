"""Tests of planner.web: the HTTP API, the pages and their security."""
