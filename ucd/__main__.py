"""``python -m ucd``: see ucd.launch (a `train` job may run in a fork of the fork server)."""

from ucd.launch import main

main()
