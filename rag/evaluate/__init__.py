"""The eval harness: hand-written suites in ``evals/`` run over the same calls as the CLI.

``suite`` loads and validates YAML suites (errors point at ``file:line``), ``assertions`` holds the
checks as pure functions, ``runner`` builds one temporary index per corpus and runs the cases,
``metrics`` aggregates them, ``report`` renders text/Markdown/HTML/JUnit and ``cli`` ties it together.
Nothing is imported here so that building the argument parser stays cheap.
"""
