"""Test package. Keep this file: without it pytest's prepend import mode could let a test folder
shadow the top-level `assets`/`sensors` packages (dagster_style.md §8.2)."""
