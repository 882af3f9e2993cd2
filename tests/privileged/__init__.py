"""Tests of isthmus.privileged (run as root; see docs/privileged.md)."""
