"""Apiary's terminal UI: bees, swarm and colony temperature, a namespace tree and a SQL editor.

Built with Textual on top of the headless SDK (:mod:`apiary`), which never imports Textual.
Start it with ``apiary tui``; :mod:`tui.data` gathers what it shows and is usable alone.
"""
